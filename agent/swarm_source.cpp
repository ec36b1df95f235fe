#include "agent/swarm_source.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "agent/seeder.h"
#include "common/log.h"
#include "common/p2p/swarm.h"

namespace layerswarm::agent {

using mirror::BlobLocator;
using mirror::BlobStream;
using p2p::TorrentId;
namespace proto = swarm_protocol;

namespace {

constexpr std::uint64_t kBlockBytes = 16 << 10;  // BitTorrent's request size

Error handover(const std::string& why) {
  return Error(Errc::kUpstreamUnavailable, "swarm: " + why);
}

proto::BlobRef ref(const BlobLocator& blob) {
  return proto::BlobRef{blob.registry, blob.repository, blob.digest};
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

  Download(p2p::Swarm& s, Layout l, Digest d, std::shared_ptr<p2p::SharedFile> f, int w)
      : swarm(s), layout(l), digest(std::move(d)), file(std::move(f)), window(w) {
    chunks.reserve(layout.chunks);
    for (std::size_t k = 0; k < layout.chunks; ++k) {
      auto c = std::make_unique<Chunk>();
      c->owner = this;
      c->index = k;
      chunks.push_back(std::move(c));
    }
    last_progress = frontier_moved = std::chrono::steady_clock::now();
  }

  void on_piece(std::size_t k, int piece) {
    Chunk& c = *chunks[k];
    if (piece < 0 || static_cast<std::size_t>(piece) >= c.have.size()) return;
    c.have[static_cast<std::size_t>(piece)] = true;
    last_progress = std::chrono::steady_clock::now();
    advance();
    if (frontier < layout.size && last_progress - frontier_moved >= kFrontierNudge &&
        nudged_at != frontier) {
      nudged_at = frontier;
      prioritize(kFrontierNudgePieces);
    }
    if (activity) activity();
    changed.notify_all();
  }

  // Moves the frontier over the verified pieces that continue it.
  void advance() {
    const std::uint64_t before = frontier;
    for (std::size_t i = 0; i < proto::kMaxChunks * 64 && frontier < layout.size; ++i) {
      const std::size_t k = static_cast<std::size_t>(frontier / layout.chunk_size);
      const Chunk& c = *chunks[k];
      const std::uint64_t begin = k * layout.chunk_size;
      const std::uint64_t length = static_cast<std::uint64_t>(layout.piece_size_of(k));
      const auto piece = static_cast<std::size_t>((frontier - begin) / length);
      if (piece >= c.have.size() || !c.have[piece]) break;
      frontier = std::min(begin + (piece + 1) * length, begin + layout.chunk_length(k));
    }
    if (frontier != before) {
      frontier_moved = std::chrono::steady_clock::now();
      if (window > 0) prioritize(window);
    }
  }

  // Top priority for the `count` pieces from the frontier on: the reader's next bytes.
  void prioritize(int count) {
    if (frontier >= layout.size || count <= 0) return;
    const std::size_t k = static_cast<std::size_t>(frontier / layout.chunk_size);
    const Chunk& c = *chunks[k];
    const int piece =
        static_cast<int>((frontier - k * layout.chunk_size) / layout.piece_size_of(k));
    if (c.torrent) swarm.prioritize(*c.torrent, piece, count);
    const int left = piece + count - static_cast<int>(c.have.size());
    if (left > 0 && !c.have.empty() && k + 1 < chunks.size() && chunks[k + 1]->torrent) {
      swarm.prioritize(*chunks[k + 1]->torrent, 0, left);
    }
  }

  // Whether at least a block's worth of payload reached the blob's torrents since the last
  // call, verified or not. On a slow link shared by many flows a 256 KiB piece can take longer
  // than the stall limit to complete while its blocks keep coming (seen at 20 Mbit/s with six
  // layers at once: a download handed over at a chunk's first byte with its pieces half in).
  // Then this counts as progress; a peer trickling less than a block per limit does not.
  bool blocks_arrived() {
    std::uint64_t total = 0;
    for (const auto& c : chunks) {
      if (c->torrent) total += swarm.received(*c->torrent);
    }
    const bool grew = total >= received + kBlockBytes;
    if (grew) {
      received = total;
      last_progress = std::chrono::steady_clock::now();
      if (activity) activity();
    }
    return grew;
  }

  // The connections of the chunk the reader waits on, for the log line of a stall.
  std::string describe_frontier() const {
    if (frontier >= layout.size) return "complete";
    const std::size_t k = static_cast<std::size_t>(frontier / layout.chunk_size);
    const Chunk& c = *chunks[k];
    return "chunk " + std::to_string(k) + ": " +
           (c.torrent ? swarm.describe(*c.torrent) : std::string("not published yet"));
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
  std::shared_ptr<p2p::SharedFile> file;  // the download's file, shared by its torrents
  int window;
  std::string supernode_ip;
  std::vector<std::unique_ptr<Chunk>> chunks;
  std::uint64_t frontier = 0;  // bytes [0, frontier) are verified pieces
  std::optional<Error> failed;
  bool closed = false;
  Notifier changed;
  SteadyTime last_progress;    // any verified piece (or, see blocks_arrived, a block)
  std::uint64_t received = 0;  // payload bytes of its torrents at the last blocks_arrived()
  SteadyTime frontier_moved;   // the contiguous prefix grew
  std::uint64_t nudged_at = ~std::uint64_t{0};
  std::function<void()> activity;  // the fetcher's (BlobStream::on_activity)
};

// Hands the fetcher the verified prefix as it grows.
class SwarmStream final : public BlobStream {
 public:
  SwarmStream(SwarmSource& source, std::shared_ptr<SwarmSource::Download> download,
              std::chrono::milliseconds stall, std::weak_ptr<bool> alive)
      : source_(source), d_(std::move(download)), stall_(stall), alive_(std::move(alive)) {}

  // A stream may outlive its source and the swarm: a download abandoned at shutdown is
  // destroyed with the io_context. Then there is nothing left to close.
  ~SwarmStream() override {
    d_->activity = nullptr;
    if (auto a = alive_.lock(); a && *a && !d_->closed) d_->close();
  }

  std::optional<std::uint64_t> size() const override { return d_->layout.size; }
  std::string_view source() const override { return "swarm"; }
  bool in_place() const override { return true; }
  void on_activity(std::function<void()> observer) override { d_->activity = std::move(observer); }

  Task<Result<std::size_t>> read_some(char* buf, std::size_t n) override {
    for (int i = 0; i < 1'000'000; ++i) {
      if (pos_ >= d_->layout.size) co_return std::size_t{0};
      if (d_->failed) co_return *d_->failed;
      if (d_->frontier > pos_) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(n, d_->frontier - pos_));
        ssize_t got = -1;
        for (int tries = 0; tries < 100; ++tries) {
          got = ::pread(d_->file->fd(), buf, want, static_cast<off_t>(pos_));
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
        if (d_->blocks_arrived()) continue;  // slow pieces, not a stall
        LOG_WARN("blob {}: swarm stalled at byte {}; {}", d_->digest.str(), pos_,
                 d_->describe_frontier());
        co_return handover("nothing arrived for " + std::to_string(stall_.count()) +
                           " ms at byte " + std::to_string(pos_));
      }
      co_await d_->changed.wait_until(until);
    }
    co_return handover("no progress");
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

SwarmSource::SwarmSource(asio::any_io_executor executor, SupernodeLink& link, p2p::Swarm& swarm,
                         Seeder& seeder, SwarmSourceOptions options)
    : executor_(executor), link_(link), swarm_(swarm), seeder_(seeder), options_(options) {}

SwarmSource::~SwarmSource() { *alive_ = false; }

Task<Result<std::uint64_t>> SwarmSource::stat(BlobLocator, SteadyTime) {
  co_return Error(Errc::kUnsupported, "swarm: sizes come from the supernode over HTTP");
}

// Every answer but a layout hands over: a 404 here is the swarm API's (a blob the supernode
// cannot publish), and the supernode's registry API, asked next, gives the authoritative one.
Task<Result<Layout>> SwarmSource::fetch_layout(const BlobLocator& blob, SteadyTime deadline) {
  const std::string target = proto::layout_target(ref(blob));
  Error last = handover("the supernode did not publish the blob in time");
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto answer = co_await link_.get(target, 64 << 10, left);
    if (!answer) co_return handover("supernode: " + answer.error().what());
    if (answer->status == 200) {
      auto layout = parse_layout(answer->headers);
      if (!layout) co_return handover(layout.error().what());
      co_return *layout;
    }
    if (answer->status == 202) continue;  // the supernode waited (long poll), no size yet
    last = handover("supernode answered " + std::to_string(answer->status));
    break;
  }
  co_return last;
}

Task<Result<std::string>> SwarmSource::fetch_metainfo(const BlobLocator& blob, std::size_t k,
                                                      std::shared_ptr<Download> download) {
  const std::string target = proto::chunk_target(ref(blob), k);
  std::weak_ptr<bool> alive = alive_;
  std::uint64_t seen = 0;
  Error last = handover("chunk " + std::to_string(k) + " not published");
  for (int attempt = 0; attempt < 100'000; ++attempt) {
    auto answer = co_await link_.get(target, proto::kMaxMetainfo);
    if (alive.expired() || download->closed) co_return Error(Errc::kShuttingDown);
    const int status = answer ? answer->status : 0;
    if (!answer) {
      last = handover("supernode: " + answer.error().what());
    } else if (status == 200) {
      co_return std::move(answer->body);
    } else if (status == 202) {
      // The supernode holds more of the blob than before: slow, not stalled.
      const std::uint64_t n = header_number(answer->headers, proto::kAvailable).value_or(0);
      if (n > seen) {
        seen = n;
        download->last_progress = std::chrono::steady_clock::now();
        // Clients waiting for bytes must wait too: on a slow upstream link a chunk can take
        // longer to reach the supernode than a response may go without a byte (16 MiB chunks,
        // six layers at once over 20 Mbit/s: ~40 s; every pull failed before this).
        if (download->activity) download->activity();
      }
      last = handover("chunk " + std::to_string(k) + " not published yet");
    } else {
      // Not the client's error (see fetch_layout): the download hands over.
      co_return handover("supernode answered " + std::to_string(status) + " for chunk " +
                         std::to_string(k));
    }
    if (std::chrono::steady_clock::now() >= download->last_progress + options_.stall_timeout &&
        !download->blocks_arrived()) {
      co_return last;
    }
    if (status != 202) {
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
    if (info && !l.fits(k, info->length, info->piece_length)) {
      info = Error(Errc::kBadUpstreamResponse, "metainfo does not match the blob's layout");
    }
    if (!info) {
      download->fail(handover("chunk " + std::to_string(k) + ": " + info.error().what()));
      co_return;
    }
    Download::Chunk& chunk = *download->chunks[k];
    p2p::Swarm::Add add;
    add.metainfo = *metainfo;
    add.file = download->file;
    add.offset = k * l.chunk_size;
    add.trackers = link_.trackers();
    add.peers = {{download->supernode_ip, l.seed_port}};
    // The client's first byte: the blob's first piece goes first. Rarest-first alone picked it
    // anywhere in the chunk, and a node pulling alone waited for the whole chunk's transfer
    // before its first byte (docs/benchmarks.md "First byte: the blob's first piece comes first").
    if (k == 0 && download->frontier == 0) add.urgent_pieces = 1;
    chunk.have.assign(static_cast<std::size_t>(info->pieces), false);
    auto id = swarm_.add(std::move(add), &chunk);
    if (!id) {
      download->fail(handover("chunk " + std::to_string(k) + ": " + id.error().what()));
      co_return;
    }
    chunk.torrent = *id;
    chunk.metainfo = std::move(*metainfo);
    seeder_.make_room();  // the cap on chunk torrents counts downloads (seeder.h)
    LOG_DEBUG("blob {}: chunk {} added to the swarm", download->digest.str(), k);
    download->last_progress = std::chrono::steady_clock::now();
    if (download->window > 0) download->prioritize(download->window);
  }
}

Task<Result<std::unique_ptr<BlobStream>>> SwarmSource::open(BlobLocator blob, std::uint64_t offset,
                                                            SteadyTime deadline, int file) {
  if (offset != 0) co_return Error(Errc::kUnsupported, "swarm: resumes go over HTTP");
  auto layout = co_await fetch_layout(blob, deadline);
  if (!layout) co_return layout.error();
  if (layout->size == 0 || layout->size < options_.min_blob_size) {
    co_return Error(Errc::kUnsupported, "swarm: small blob");
  }
  auto ip = co_await link_.ip(deadline);
  if (!ip) co_return handover(ip.error().what());
  auto shared = p2p::SharedFile::dup(file);
  if (!shared) co_return handover(shared.error().what());
  auto download =
      std::make_shared<Download>(swarm_, *layout, blob.digest, std::move(*shared), options_.window);
  download->supernode_ip = std::move(*ip);
  LOG_DEBUG("blob {}: swarm download of {} bytes in {} chunks", blob.digest.str(), layout->size,
            layout->chunks);
  asio::co_spawn(executor_, add_chunks(download, std::move(blob)), asio::detached);
  co_return std::make_unique<SwarmStream>(*this, download, options_.stall_timeout, alive_);
}

void SwarmSource::keep_seeding(Download& download) {
  std::vector<TorrentId> ids;
  std::vector<std::string> metainfo;
  for (auto& c : download.chunks) {
    if (!c->torrent) return;  // incomplete: close() removes them
  }
  for (auto& c : download.chunks) {
    swarm_.detach(*c->torrent);
    ids.push_back(*c->torrent);
    c->torrent.reset();
    metainfo.push_back(std::move(c->metainfo));
  }
  seeder_.adopt(download.digest, std::move(ids), download.layout, metainfo);
}

}  // namespace layerswarm::agent
