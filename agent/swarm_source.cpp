#include "agent/swarm_source.h"

#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <vector>

#include "common/encoding.h"
#include "common/log.h"
#include "common/p2p/swarm.h"
#include "common/store.h"

namespace layerswarm::agent {

using mirror::BlobLocator;
using mirror::BlobStream;
using p2p::TorrentId;

namespace {

constexpr std::size_t kMaxMetainfo = 4 << 20;
constexpr std::size_t kMaxChunks = 1 << 20;

std::optional<std::uint64_t> header_number(const Headers& headers, std::string_view name) {
  const auto v = headers.get(name);
  if (!v || v->empty()) return std::nullopt;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
  return n;
}

Error handover(const std::string& why) {
  return Error(Errc::kUpstreamUnavailable, "swarm: " + why);
}

bool is_power_of_two(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

struct SwarmSource::Layout {
  std::uint64_t size = 0;
  std::uint64_t chunk_size = 0;
  int piece_size = 0;
  std::size_t chunks = 0;
  std::uint16_t seed_port = 0;

  std::uint64_t chunk_length(std::size_t k) const {
    return std::min(size, (k + 1) * chunk_size) - k * chunk_size;
  }
};

namespace {

// The supernode's answer to a layout request. Errors: kBadUpstreamResponse.
Result<SwarmSource::Layout> parse_layout(const Headers& h) {
  const auto size = header_number(h, "X-Layerswarm-Blob-Size");
  const auto chunk = header_number(h, "X-Layerswarm-Chunk-Size");
  const auto chunks = header_number(h, "X-Layerswarm-Chunks");
  const auto piece = header_number(h, "X-Layerswarm-Piece-Size");
  const auto port = header_number(h, "X-Layerswarm-Seed-Port");
  auto bad = [](const std::string& why) {
    return Error(Errc::kBadUpstreamResponse, "supernode blob layout: " + why);
  };
  if (!size || !chunk || !chunks || !piece || !port) return bad("headers missing");
  if (!is_power_of_two(*piece) || *piece < (16 << 10) || *piece > (16 << 20)) {
    return bad("bad piece size");
  }
  if (*chunk < *piece || *chunk % *piece != 0) return bad("bad chunk size");
  const std::uint64_t expected = *size == 0 ? 1 : (*size + *chunk - 1) / *chunk;
  if (*chunks != expected || *chunks > kMaxChunks) return bad("chunk count does not match");
  if (*port == 0 || *port > 65535) return bad("bad seed port");
  SwarmSource::Layout l;
  l.size = *size;
  l.chunk_size = *chunk;
  l.piece_size = static_cast<int>(*piece);
  l.chunks = static_cast<std::size_t>(*chunks);
  l.seed_port = static_cast<std::uint16_t>(*port);
  return l;
}

}  // namespace

// One blob being downloaded through the swarm; shared by its stream and the task adding its
// chunk torrents as the supernode publishes them.
struct SwarmSource::Download {
  struct Chunk final : p2p::TorrentObserver {
    Download* owner = nullptr;
    std::size_t index = 0;
    std::optional<TorrentId> torrent;
    std::vector<bool> have;  // per piece, once the torrent is added
    std::string metainfo;

    void on_piece(int piece) override { owner->on_piece(index, piece); }
    void on_failed(std::string why) override { owner->fail(handover("torrent failed: " + why)); }
  };

  Download(p2p::Swarm& s, Layout l, Digest d, int f, int w)
      : swarm(s), layout(l), digest(std::move(d)), fd(f), window(w) {
    chunks.reserve(layout.chunks);
    for (std::size_t k = 0; k < layout.chunks; ++k) {
      auto c = std::make_unique<Chunk>();
      c->owner = this;
      c->index = k;
      chunks.push_back(std::move(c));
    }
    last_progress = std::chrono::steady_clock::now();
  }

  void on_piece(std::size_t k, int piece) {
    Chunk& c = *chunks[k];
    if (piece < 0 || static_cast<std::size_t>(piece) >= c.have.size()) return;
    c.have[static_cast<std::size_t>(piece)] = true;
    last_progress = std::chrono::steady_clock::now();
    advance();
    changed.notify_all();
  }

  // Moves the frontier over the verified pieces that continue it.
  void advance() {
    const std::uint64_t before = frontier;
    for (std::size_t i = 0; i < kMaxChunks * 64 && frontier < layout.size; ++i) {
      const std::size_t k = static_cast<std::size_t>(frontier / layout.chunk_size);
      const Chunk& c = *chunks[k];
      const std::uint64_t begin = k * layout.chunk_size;
      const auto piece = static_cast<std::size_t>((frontier - begin) / layout.piece_size);
      if (piece >= c.have.size() || !c.have[piece]) break;
      frontier = std::min(begin + (piece + 1) * static_cast<std::uint64_t>(layout.piece_size),
                          begin + layout.chunk_length(k));
    }
    if (frontier != before) prioritize();
  }

  // Top priority for the `window` pieces from the frontier on: the reader's next bytes.
  void prioritize() {
    if (frontier >= layout.size) return;
    const std::size_t k = static_cast<std::size_t>(frontier / layout.chunk_size);
    const Chunk& c = *chunks[k];
    const int piece = static_cast<int>((frontier - k * layout.chunk_size) / layout.piece_size);
    if (c.torrent) swarm.prioritize(*c.torrent, piece, window);
    const int left = piece + window - static_cast<int>(c.have.size());
    if (left > 0 && !c.have.empty() && k + 1 < chunks.size() && chunks[k + 1]->torrent) {
      swarm.prioritize(*chunks[k + 1]->torrent, 0, left);
    }
  }

  void fail(Error error) {
    if (!failed) failed = std::move(error);
    changed.notify_all();
  }

  // Stops every torrent (nothing more is written into the file).
  void close() {
    closed = true;
    for (auto& c : chunks) {
      if (c->torrent) swarm.remove(*c->torrent);
      c->torrent.reset();
    }
    changed.notify_all();
  }

  p2p::Swarm& swarm;
  Layout layout;
  Digest digest;
  int fd;  // the download's file: the fetcher keeps it open while the stream lives
  int window;
  std::string supernode_ip;
  std::vector<std::unique_ptr<Chunk>> chunks;
  std::uint64_t frontier = 0;  // bytes [0, frontier) are verified pieces
  std::optional<Error> failed;
  bool closed = false;
  Notifier changed;
  SteadyTime last_progress;
};

// Hands the fetcher the verified prefix as it grows.
class SwarmStream final : public BlobStream {
 public:
  SwarmStream(SwarmSource& source, std::shared_ptr<SwarmSource::Download> download,
              std::chrono::milliseconds stall, std::weak_ptr<bool> alive)
      : source_(source), d_(std::move(download)), stall_(stall), alive_(std::move(alive)) {}

  ~SwarmStream() override {
    if (!d_->closed) d_->close();
  }

  std::optional<std::uint64_t> size() const override { return d_->layout.size; }
  std::string_view source() const override { return "swarm"; }
  bool in_place() const override { return true; }

  Task<Result<std::size_t>> read_some(char* buf, std::size_t n) override {
    for (int i = 0; i < 1'000'000; ++i) {
      if (pos_ >= d_->layout.size) co_return std::size_t{0};
      if (d_->failed) co_return *d_->failed;
      if (d_->frontier > pos_) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(n, d_->frontier - pos_));
        ssize_t got = -1;
        for (int tries = 0; tries < 100; ++tries) {
          got = ::pread(d_->fd, buf, want, static_cast<off_t>(pos_));
          if (got >= 0 || errno != EINTR) break;
        }
        if (got <= 0) {
          co_return Error(Errc::kStorage,
                          std::string("reading swarm pieces back: ") + std::strerror(errno));
        }
        pos_ += static_cast<std::uint64_t>(got);
        co_return static_cast<std::size_t>(got);
      }
      const SteadyTime until = d_->last_progress + stall_;
      if (std::chrono::steady_clock::now() >= until) {
        co_return Error(Errc::kTimeout, "swarm: nothing arrived for " +
                                            std::to_string(stall_.count()) + " ms at byte " +
                                            std::to_string(pos_));
      }
      co_await d_->changed.wait_until(until);
    }
    co_return Error(Errc::kTimeout, "swarm: no progress");
  }

  void cached() override {
    if (auto a = alive_.lock(); a && *a) source_.keep_seeding(*d_);
    d_->close();  // whatever keep_seeding did not take
  }

 private:
  SwarmSource& source_;
  std::shared_ptr<SwarmSource::Download> d_;
  std::chrono::milliseconds stall_;
  std::weak_ptr<bool> alive_;
  std::uint64_t pos_ = 0;
};

namespace {

ClientOptions client_options(const SwarmSourceOptions& o) {
  ClientOptions c;
  c.ca_file = o.ca_file;
  c.connect_timeout = std::chrono::seconds(5);
  c.read_timeout = std::chrono::seconds(15);
  c.user_agent = "layerswarm-agent";
  return c;
}

}  // namespace

SwarmSource::SwarmSource(asio::any_io_executor executor, p2p::Swarm& swarm,
                         SwarmSourceOptions options)
    : executor_(executor),
      swarm_(swarm),
      options_(std::move(options)),
      client_(executor, client_options(options_)) {}

SwarmSource::~SwarmSource() {
  *alive_ = false;
  if (check_timer_) check_timer_->cancel();
}

std::vector<std::string> SwarmSource::trackers() const {
  std::string url =
      options_.supernode.origin() + "/announce?token=" + percent_encode(options_.token);
  if (!options_.zone.empty()) url += "&zone=" + percent_encode(options_.zone);
  return {url};
}

Url SwarmSource::url_for(const BlobLocator& blob, std::string_view suffix) const {
  Url u = options_.supernode;
  u.target = "/swarm/v1/" + blob.repository + "/blobs/" + blob.digest.str() + std::string(suffix);
  u.add_query("ns", blob.registry);
  return u;
}

Task<Result<std::uint64_t>> SwarmSource::stat(BlobLocator, SteadyTime) {
  co_return Error(Errc::kUnsupported, "swarm: sizes come from the supernode over HTTP");
}

Task<Result<SwarmSource::Layout>> SwarmSource::fetch_layout(const BlobLocator& blob,
                                                            SteadyTime deadline) {
  const Url url = url_for(blob, "");
  Error last = handover("the supernode did not publish the blob in time");
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    ClientRequest request;
    request.url = url;
    request.headers.add("Authorization", "Bearer " + options_.token);
    request.timeout = left;
    auto response = co_await client_.send(std::move(request));
    if (!response) co_return handover("supernode: " + response.error().what());
    ClientResponse& r = **response;
    auto body = co_await r.read_all(64 << 10);
    if (!body) co_return handover("supernode: " + body.error().what());
    if (r.status == 200) co_return parse_layout(r.headers);
    if (r.status == 202) continue;  // the supernode waited (long poll) and has no size yet
    if (r.status == 404) co_return Error(Errc::kBlobUnknown, "supernode: no such blob");
    if (r.status == 401 || r.status == 403) {
      co_return Error(Errc::kDenied, "supernode refused the cluster token");
    }
    last = handover("supernode answered " + std::to_string(r.status));
    break;
  }
  co_return last;
}

Task<Result<std::string>> SwarmSource::fetch_metainfo(const BlobLocator& blob, std::size_t k,
                                                      std::shared_ptr<Download> download) {
  const Url url = url_for(blob, "/chunks/" + std::to_string(k));
  std::weak_ptr<bool> alive = alive_;
  std::uint64_t seen = 0;
  Error last = handover("chunk " + std::to_string(k) + " not published");
  for (int attempt = 0; attempt < 100'000; ++attempt) {
    ClientRequest request;
    request.url = url;
    request.headers.add("Authorization", "Bearer " + options_.token);
    auto response = co_await client_.send(std::move(request));
    if (alive.expired() || download->closed) co_return Error(Errc::kShuttingDown);
    if (response) {
      ClientResponse& r = **response;
      auto body = co_await r.read_all(kMaxMetainfo);
      if (alive.expired() || download->closed) co_return Error(Errc::kShuttingDown);
      if (!body) {
        last = handover("chunk metainfo: " + body.error().what());
      } else if (r.status == 200) {
        co_return std::move(*body);
      } else if (r.status == 202) {
        // The supernode holds more of the blob than before: slow, not stalled.
        const auto available = header_number(r.headers, "X-Layerswarm-Available");
        if (available && *available > seen) {
          seen = *available;
          download->last_progress = std::chrono::steady_clock::now();
        }
        last = handover("chunk " + std::to_string(k) + " not published yet");
      } else if (r.status == 404) {
        co_return Error(Errc::kBlobUnknown, "supernode: no chunk " + std::to_string(k));
      } else {
        last = handover("supernode answered " + std::to_string(r.status) + " for chunk " +
                        std::to_string(k));
      }
    } else {
      last = handover("supernode: " + response.error().what());
    }
    if (std::chrono::steady_clock::now() >= download->last_progress + options_.stall_timeout) {
      co_return last;
    }
    if (!response || (*response)->status != 202) {
      // A failure rather than a long poll: retry after a pause, until the stall limit.
      asio::steady_timer pause(executor_, std::chrono::milliseconds(250));
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (alive.expired() || download->closed) co_return Error(Errc::kShuttingDown);
    }
  }
  co_return last;
}

Task<void> SwarmSource::add_chunks(std::shared_ptr<Download> download, BlobLocator blob) {
  std::weak_ptr<bool> alive = alive_;
  for (std::size_t k = 0; k < download->chunks.size(); ++k) {
    if (alive.expired() || download->closed) co_return;
    auto metainfo = co_await fetch_metainfo(blob, k, download);
    if (alive.expired() || download->closed) co_return;
    if (!metainfo) {
      LOG_WARN("blob {}: swarm chunk {}: {}", blob.digest.str(), k, metainfo.error().what());
      download->fail(metainfo.error());
      co_return;
    }
    auto info = p2p::Swarm::inspect(*metainfo);
    const Layout& l = download->layout;
    if (info && (info->length != l.chunk_length(k) || info->piece_length != l.piece_size)) {
      info = Error(Errc::kBadUpstreamResponse, "metainfo does not match the blob's layout");
    }
    if (!info) {
      download->fail(handover("chunk " + std::to_string(k) + ": " + info.error().what()));
      co_return;
    }
    Download::Chunk& chunk = *download->chunks[k];
    p2p::Swarm::Add add;
    add.metainfo = *metainfo;
    add.fd = download->fd;
    add.offset = k * l.chunk_size;
    add.trackers = trackers();
    add.peers = {{download->supernode_ip, l.seed_port}};
    chunk.have.assign(static_cast<std::size_t>(info->pieces), false);
    auto id = swarm_.add(std::move(add), &chunk);
    if (!id) {
      download->fail(handover("chunk " + std::to_string(k) + ": " + id.error().what()));
      co_return;
    }
    chunk.torrent = *id;
    chunk.metainfo = std::move(*metainfo);
    download->last_progress = std::chrono::steady_clock::now();
    download->prioritize();
  }
}

Task<Result<std::string>> SwarmSource::supernode_ip(SteadyTime deadline) {
  const std::string& host = options_.supernode.host;
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) co_return host;
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor_);
  asio::steady_timer guard(executor_, deadline);
  guard.async_wait([resolver](boost::system::error_code e) {
    if (!e) resolver->cancel();
  });
  const auto results =
      co_await resolver->async_resolve(host, "", asio::redirect_error(asio::use_awaitable, ec));
  guard.cancel();
  if (ec || results.empty()) co_return handover("cannot resolve " + host + ": " + ec.message());
  co_return results.begin()->endpoint().address().to_string();
}

Task<Result<std::unique_ptr<BlobStream>>> SwarmSource::open(BlobLocator blob, std::uint64_t offset,
                                                            SteadyTime deadline, int file) {
  if (offset != 0) co_return Error(Errc::kUnsupported, "swarm: resumes go over HTTP");
  auto layout = co_await fetch_layout(blob, deadline);
  if (!layout) co_return layout.error();
  if (layout->size == 0 || layout->size < options_.min_blob_size) {
    co_return Error(Errc::kUnsupported, "swarm: small blob");
  }
  auto ip = co_await supernode_ip(deadline);
  if (!ip) co_return ip.error();
  auto download = std::make_shared<Download>(swarm_, *layout, blob.digest, file, options_.window);
  download->supernode_ip = std::move(*ip);
  LOG_DEBUG("blob {}: swarm download of {} bytes in {} chunks", blob.digest.str(), layout->size,
            layout->chunks);
  asio::co_spawn(executor_, add_chunks(download, std::move(blob)), asio::detached);
  co_return std::make_unique<SwarmStream>(*this, download, options_.stall_timeout, alive_);
}

// Seeding records: {"size", "chunk_size", "piece_size", "metainfo": [base64, ...]}.
void SwarmSource::keep_seeding(Download& download) {
  std::vector<TorrentId> ids;
  nlohmann::json metainfo = nlohmann::json::array();
  for (auto& c : download.chunks) {
    if (!c->torrent) return;  // incomplete: close() removes them
    metainfo.push_back(base64_encode(c->metainfo));
  }
  for (auto& c : download.chunks) {
    swarm_.detach(*c->torrent);
    ids.push_back(*c->torrent);
    c->torrent.reset();
  }
  const std::string key = download.digest.str();
  if (auto old = seeding_.find(key); old != seeding_.end()) {
    for (auto id : old->second) swarm_.remove(id);
  }
  seeding_[key] = std::move(ids);
  if (store_) {
    const nlohmann::json record = {{"size", download.layout.size},
                                   {"chunk_size", download.layout.chunk_size},
                                   {"piece_size", download.layout.piece_size},
                                   {"metainfo", std::move(metainfo)}};
    if (auto s = store_->put_extra(download.digest, record.dump()); !s) {
      LOG_WARN("blob {}: seeding record not saved: {}", key, s.error().what());
    }
  }
}

void SwarmSource::attach(Store& store) {
  store_ = &store;
  std::size_t blobs = 0;
  std::size_t torrents = 0;
  for (const auto& [digest, text] : store.extras()) {
    const std::string key = digest.str();
    auto blob = store.open_blob(digest);
    const nlohmann::json record = nlohmann::json::parse(text, nullptr, false);
    if (!blob || !record.is_object() || !record.contains("metainfo") ||
        !record["metainfo"].is_array() || !record.contains("chunk_size") ||
        !record["chunk_size"].is_number_unsigned()) {
      LOG_WARN("blob {}: not seeded again (blob or seeding record unusable)", key);
      continue;
    }
    const std::uint64_t chunk = record["chunk_size"].get<std::uint64_t>();
    std::vector<TorrentId> ids;
    bool ok = true;
    std::uint64_t offset = 0;
    for (const auto& m : record["metainfo"]) {
      auto bytes = m.is_string() ? base64_decode(m.get<std::string>()) : std::nullopt;
      auto info = bytes ? p2p::Swarm::inspect(*bytes)
                        : Result<p2p::ChunkInfo>(Error(Errc::kBadUpstreamResponse));
      if (!info || offset + info->length > blob->size) {
        ok = false;
        break;
      }
      p2p::Swarm::Add add;
      add.metainfo = std::move(*bytes);
      add.fd = blob->fd.get();
      add.offset = offset;
      add.seed = true;
      add.trackers = trackers();
      auto id = swarm_.add(std::move(add), nullptr);
      if (!id) {
        ok = false;
        break;
      }
      ids.push_back(*id);
      offset += chunk;
    }
    if (!ok || offset < blob->size) {
      LOG_WARN("blob {}: not seeded again (seeding record does not match the blob)", key);
      for (auto id : ids) swarm_.remove(id);
      continue;
    }
    ++blobs;
    torrents += ids.size();
    seeding_[key] = std::move(ids);
  }
  if (blobs > 0)
    LOG_INFO("swarm: seeding {} cached blobs again ({} chunk torrents)", blobs, torrents);
  check_timer_ = std::make_shared<asio::steady_timer>(executor_);
  asio::co_spawn(
      executor_,
      run_periodically(check_timer_, std::chrono::minutes(1), alive_, [this] { check_seeding(); }),
      asio::detached);
}

// Blobs the cache dropped (TTL sweep) stop being seeded.
void SwarmSource::check_seeding() {
  std::vector<std::string> gone;
  for (const auto& entry : seeding_) {
    auto digest = Digest::parse(entry.first);
    if (!digest || !store_->open_blob(*digest)) gone.push_back(entry.first);
  }
  for (const auto& key : gone) {
    for (auto id : seeding_[key]) swarm_.remove(id);
    seeding_.erase(key);
    LOG_INFO("blob {}: no longer cached; stopped seeding it", key);
  }
}

}  // namespace layerswarm::agent
