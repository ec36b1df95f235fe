#include "supernode/publisher.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/mirror/blob_fetch.h"
#include "common/mirror/blob_service.h"
#include "common/mirror/node.h"
#include "common/mirror/responses.h"
#include "common/p2p/swarm.h"
#include "common/reference.h"
#include "common/service.h"
#include "common/store.h"

namespace layerswarm::supernode {

using mirror::BlobFetch;

struct Publisher::Blob {
  bool sized = false;
  std::uint64_t size = 0;
  std::uint64_t chunk = 0;            // this blob's chunk size, once sized
  std::uint64_t piece = 0;            // and its chunks' piece size (piece_size_for),
  std::uint64_t first_piece = 0;      // chunk 0's (first_piece_size_for)
  std::vector<std::string> metainfo;  // per chunk, "" until made
  std::vector<p2p::TorrentId> torrents;
  std::optional<Error> failed;
  Notifier changed;
  std::shared_ptr<BlobFetch> fetch;  // while downloading: keeps the file open
  UniqueFd file;                     // a cached blob
  Store::Hold hold;                  // not evicted while published (peers upload from it)
  SteadyTime last_used = std::chrono::steady_clock::now();  // last request or upload seen
  std::uint64_t uploaded = 0;                               // as of the last check

  std::uint64_t available() const {
    if (fetch) return fetch->available();
    return sized ? size : 0;
  }
};

namespace proto = swarm_protocol;

namespace {

// A blob's extra record in the supernode's store: the chunk size it was published with.
constexpr const char* kChunkSizeKey = "chunk_size";

std::string chunk_size_record(std::uint64_t chunk) {
  return nlohmann::json{{kChunkSizeKey, chunk}}.dump();
}

// The chunk size a cached blob was published with before (its peers' torrents), else the
// largest: its bytes are all at hand.
std::uint64_t recorded_chunk_size(Store& store, const Digest& digest, std::uint64_t fallback,
                                  std::uint64_t piece) {
  auto text = store.get_extra(digest);
  if (!text) return fallback;
  const nlohmann::json record = nlohmann::json::parse(*text, nullptr, false);
  if (!record.is_object() || !record.contains(kChunkSizeKey) ||
      !record[kChunkSizeKey].is_number_unsigned()) {
    return fallback;
  }
  const auto chunk = record[kChunkSizeKey].get<std::uint64_t>();
  return chunk == 0 || chunk % piece != 0 ? fallback : chunk;
}

}  // namespace

Publisher::Publisher(mirror::MirrorNode& node, p2p::Swarm& swarm, PublisherOptions options,
                     asio::any_io_executor executor)
    : node_(node),
      swarm_(swarm),
      options_(options),
      sizing_{.max_chunk = options.chunk_size,
              .min_chunk = std::min(options.min_chunk_size, options.chunk_size),
              .piece = static_cast<std::uint64_t>(options.piece_size),
              .chunk_time = options.chunk_time},
      timer_(std::make_shared<asio::steady_timer>(executor)) {
  asio::co_spawn(
      executor,
      run_periodically(timer_, std::chrono::minutes(1), alive_, [this] { withdraw_uncached(); }),
      asio::detached);
}

Publisher::~Publisher() {
  *alive_ = false;
  timer_->cancel();
}

// Published blobs the cache dropped (TTL sweep) are withdrawn from the swarm; a later request
// publishes them again from a new download. So are blobs nobody asked for or downloaded from
// for `idle` (their chunks are hashed again when next asked for): the supernode's torrents,
// descriptors and ticks follow what is in use, not the size of its cache.
void Publisher::withdraw_uncached() {
  // libtorrent has long dropped the torrents withdrawn a minute ago; glibc keeps their pages.
  if (std::exchange(trim_pending_, false)) release_free_memory();
  const SteadyTime now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, const char*>> gone;
  for (const auto& [key, blob] : blobs_) {
    if (blob->fetch || !blob->sized || blob->failed) continue;  // still being published
    auto digest = Digest::parse(key);
    if (!digest || !node_.store().blob_size(*digest)) {
      gone.emplace_back(key, "no longer cached");
      continue;
    }
    if (now - blob->last_used < options_.idle) continue;
    std::uint64_t uploaded = 0;
    for (auto id : blob->torrents) uploaded += swarm_.uploaded(id);
    if (uploaded > blob->uploaded) {
      blob->uploaded = uploaded;
      blob->last_used = now;
      continue;
    }
    gone.emplace_back(key, "idle");
  }
  for (const auto& [key, why] : gone) {
    for (auto id : blobs_[key]->torrents) swarm_.remove(id);
    blobs_.erase(key);
    LOG_INFO("swarm: blob {} withdrawn ({})", key, why);
    trim_pending_ = true;
  }
}

bool Publisher::handles(std::string_view target) { return proto::is_swarm_target(target); }

void Publisher::record_demand(const mirror::BlobLocator& blob) {
  const SteadyTime now = std::chrono::steady_clock::now();
  proto::BlobRef ref{blob.registry, blob.repository, blob.digest};
  auto [it, fresh] = last_demand_.try_emplace(blob.digest.str(), DemandState{now, false});
  if (fresh || now - it->second.listed >= options_.demand_repeat) {
    it->second = DemandState{now, false};
    list_demand(ref);
    return;
  }
  if (it->second.pending) return;
  it->second.pending = true;
  const SteadyTime at = it->second.listed + options_.demand_repeat;
  asio::co_spawn(timer_->get_executor(), list_later(std::move(ref), at), asio::detached);
}

Task<void> Publisher::list_later(proto::BlobRef blob, SteadyTime at) {
  std::weak_ptr<bool> alive = alive_;
  asio::steady_timer timer(co_await asio::this_coro::executor, at);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (alive.expired()) co_return;
  auto it = last_demand_.find(blob.digest.str());
  if (it == last_demand_.end() || !it->second.pending) co_return;
  it->second = DemandState{std::chrono::steady_clock::now(), false};
  list_demand(blob);
}

void Publisher::list_demand(const proto::BlobRef& blob) {
  const SteadyTime now = std::chrono::steady_clock::now();
  demand_.push_back(DemandEntry{++demand_seq_, now, blob});
  // Bounded memory: the feed keeps the newest entries, the repeat table forgets old digests.
  while (demand_.size() > proto::kMaxDemandEntries ||
         (!demand_.empty() && now - demand_.front().at > options_.demand_memory)) {
    demand_.pop_front();
  }
  if (last_demand_.size() > 4 * proto::kMaxDemandEntries) {
    for (auto d = last_demand_.begin(); d != last_demand_.end();) {
      const bool old = !d->second.pending && now - d->second.listed > options_.demand_repeat;
      d = old ? last_demand_.erase(d) : std::next(d);
    }
  }
  demand_changed_.notify_all();
}

// Entries after `after`, at once if there are any, else when one comes (at most demand_wait).
// An `after` from the future (the supernode restarted) starts the agent over.
Task<void> Publisher::serve_demand(std::uint64_t after, ResponseWriter& out, RequestLog& log) {
  log.object = "demand";
  if (after > demand_seq_) after = 0;
  const SteadyTime deadline = deadline_after(options_.demand_wait);
  for (int i = 0; i < 1000 && demand_seq_ <= after; ++i) {
    const bool woken = co_await demand_changed_.wait_until(deadline);
    if (!woken && std::chrono::steady_clock::now() >= deadline) break;
  }
  proto::Demand demand;
  demand.next = demand_seq_;
  for (const auto& e : demand_) {
    if (e.seq > after) demand.blobs.push_back(e.blob);
  }
  ResponseHead head;
  head.headers.add("Content-Type", "application/json");
  co_await mirror::send_body(out, std::move(head), proto::demand_body(demand), log);
}

Task<void> Publisher::serve(HttpRequest request, ResponseWriter& out, RequestLog& log) {
  log.source = "swarm";
  auto parsed = proto::parse_target(request.target);
  if (!parsed) {
    co_await mirror::send_error(out, parsed.error(), log);
    co_return;
  }
  if (parsed->kind == proto::Request::Kind::kDemand) {
    co_await serve_demand(parsed->after, out, log);
    co_return;
  }
  auto locator =
      node_.locate(parsed->blob->registry, parsed->blob->repository, parsed->blob->digest);
  if (!locator) {
    co_await mirror::send_error(out, locator.error(), log);
    co_return;
  }
  log.registry = locator->registry;
  log.repository = locator->repository;
  log.object = "blobs/" + locator->digest.str();
  // Per-repository access (docs/security.md): a blob this supernode holds or fetches for one
  // repository is published under another only once the upstream shows it there.
  if (node_.store().blob_size(locator->digest) || node_.fetcher().find(locator->digest)) {
    auto admitted = co_await node_.blobs().admit(*locator);
    if (!admitted) {
      co_await mirror::send_error(out, admitted.error(), log);
      co_return;
    }
  }
  std::optional<std::size_t> chunk;
  if (parsed->kind == proto::Request::Kind::kChunk) {
    chunk = parsed->chunk;
    log.object += "/chunks/" + std::to_string(parsed->chunk);
  } else {
    record_demand(*locator);
  }
  auto& slot = blobs_[locator->digest.str()];
  if (!slot) {
    slot = std::make_shared<Blob>();
    auto executor = co_await asio::this_coro::executor;
    asio::co_spawn(executor, produce(slot, *locator), asio::detached);
  }
  std::shared_ptr<Blob> blob = slot;
  blob->last_used = std::chrono::steady_clock::now();
  const std::optional<std::size_t> k = chunk;
  auto ready = [&] {
    if (!blob->sized) return false;
    return !k || (*k < blob->metainfo.size() && !blob->metainfo[*k].empty());
  };
  const SteadyTime deadline = deadline_after(options_.wait);
  for (int i = 0; i < 100'000 && !ready(); ++i) {
    if (blob->failed) break;
    if (blob->sized && k && *k >= blob->metainfo.size()) break;
    const bool woken = co_await blob->changed.wait_until(deadline);
    if (!woken && std::chrono::steady_clock::now() >= deadline) break;
  }
  if (blob->failed) {
    co_await mirror::send_error(out, *blob->failed, log);
    co_return;
  }
  if (blob->sized && k && *k >= blob->metainfo.size()) {
    Error none(Errc::kBlobUnknown, "no such chunk");
    co_await mirror::send_error(out, std::move(none), log);
    co_return;
  }
  ResponseHead head;
  if (blob->sized) {
    head.headers.add(proto::kBlobSize, std::to_string(blob->size));
    head.headers.add(proto::kChunkSize, std::to_string(blob->chunk));
    head.headers.add(proto::kChunks, std::to_string(blob->metainfo.size()));
    head.headers.add(proto::kPieceSize, std::to_string(blob->piece));
    head.headers.add(proto::kFirstPieceSize, std::to_string(blob->first_piece));
    head.headers.add(proto::kSeedPort, std::to_string(swarm_.port()));
  }
  if (!ready()) {
    // Not yet: 202 and how far the supernode's own download got, so the agent can tell a
    // slow upstream from a dead one.
    head.status = 202;
    head.headers.add(proto::kAvailable, std::to_string(blob->available()));
    co_await mirror::send_body(out, std::move(head), "", log);
    co_return;
  }
  if (!k) {
    co_await mirror::send_body(out, std::move(head), "", log);
    co_return;
  }
  head.headers.add("Content-Type", std::string(proto::kMetainfoType));
  const std::string body = blob->metainfo[*k];
  co_await mirror::send_body(out, std::move(head), body, log);
}

Task<void> Publisher::produce(std::shared_ptr<Blob> blob, mirror::BlobLocator locator) {
  const std::string key = locator.digest.str();
  Status status;
  blob->hold = node_.store().hold(locator.digest);
  if (auto cached = node_.store().open_blob(locator.digest)) {
    blob->file = std::move(cached->fd);
    const std::uint64_t chunk =
        recorded_chunk_size(node_.store(), locator.digest, options_.chunk_size,
                            static_cast<std::uint64_t>(options_.piece_size));
    status = co_await publish_chunks(blob, blob->file.get(), cached->size, chunk);
  } else {
    blob->fetch = node_.fetcher().join(locator);
    BlobFetch& fetch = *blob->fetch;
    const SteadyTime deadline = deadline_after(std::chrono::minutes(2));
    while ((fetch.state() == BlobFetch::State::kOpening ||
            (fetch.state() == BlobFetch::State::kStreaming && !fetch.size())) &&
           std::chrono::steady_clock::now() < deadline) {
      co_await fetch.progress().wait_until(deadline);
    }
    if (fetch.state() == BlobFetch::State::kFailed) {
      status = fetch.error();
    } else if (!fetch.size()) {
      status = Error(Errc::kTimeout, "the upstream did not answer");
    } else {
      status = co_await publish_chunks(blob, fetch.fd(), *fetch.size(), 0);
    }
  }
  if (!status) {
    LOG_WARN("swarm: blob {} not published: {}", key, status.error().what());
    for (auto id : blob->torrents) swarm_.remove(id);
    blob->failed = status.error();
    blob->changed.notify_all();
    blobs_.erase(key);  // a later request tries again
    co_return;
  }
  blob->fetch.reset();  // the torrents hold their own descriptors
}

void Publisher::count_received(const BlobFetch& fetch, std::uint64_t& seen) {
  const std::uint64_t now_at = fetch.available();
  if (now_at > seen) received_.add(now_at - seen, std::chrono::steady_clock::now());
  seen = std::max(seen, now_at);
}

Task<std::uint64_t> Publisher::choose_chunk_size(BlobFetch* fetch, std::uint64_t size) {
  if (!fetch || size <= sizing_.min_chunk) co_return sizing_.max_chunk;
  auto now = std::chrono::steady_clock::now();
  std::uint64_t seen = fetch->available();
  const std::uint64_t first = seen;
  const SteadyTime start = now;
  const SteadyTime until = start + sizing_.estimate_time;
  // No recent rate (the first download in a while): watch this one's bytes for a moment, or
  // until a largest chunk's worth arrived.
  for (int i = 0; i < 10'000 && !received_.rate(now) && now < until; ++i) {
    if (fetch->state() != BlobFetch::State::kStreaming) break;
    if (fetch->available() - first >= sizing_.max_chunk) break;
    co_await fetch->progress().wait_until(until);
    count_received(*fetch, seen);
    now = std::chrono::steady_clock::now();
  }
  const double elapsed = std::max(std::chrono::duration<double>(now - start).count(), 1e-3);
  double rate = static_cast<double>(fetch->available() - first) / elapsed;
  if (fetch->state() != BlobFetch::State::kStreaming ||
      fetch->available() - first >= sizing_.max_chunk) {
    rate = std::numeric_limits<double>::infinity();  // all here, or a largest chunk at once
  }
  if (auto site = received_.rate(now)) rate = std::max(rate, *site);
  const std::uint64_t chunk = chunk_size_for(rate, sizing_);
  // Kept with the cached blob, so that publishing it again (after `idle`, or a restart) makes
  // the same torrents its peers seed; committed with the blob in one index write, so a crash
  // cannot separate them. Set in the same step as the state check above: a chunk other than
  // the largest is chosen only while the download streams, before its digest check. A blob
  // without the record is published again with the largest chunks.
  fetch->set_commit_extra(chunk_size_record(chunk));
  if (chunk != sizing_.max_chunk) {
    LOG_INFO("swarm: blob of {} bytes in chunks of {} KiB (upstream at {:.0f} KiB/s)", size,
             chunk >> 10, rate / 1024);
  }
  co_return chunk;
}

// Makes and seeds chunk k as soon as the download holds it; then waits for the digest check.
Task<Status> Publisher::publish_chunks(std::shared_ptr<Blob> blob, int fd, std::uint64_t size,
                                       std::uint64_t chunk) {
  BlobFetch* fetch = blob->fetch.get();
  if (chunk == 0) chunk = co_await choose_chunk_size(fetch, size);
  const std::size_t count = size == 0 ? 1 : static_cast<std::size_t>((size + chunk - 1) / chunk);
  blob->size = size;
  blob->chunk = chunk;
  blob->piece = piece_size_for(chunk, sizing_);
  blob->first_piece = first_piece_size_for(chunk, sizing_);
  blob->metainfo.assign(count, "");
  blob->sized = true;
  blob->changed.notify_all();
  std::uint64_t seen = fetch ? fetch->available() : 0;
  auto shared = p2p::SharedFile::dup(fd);  // one descriptor for all of the blob's torrents
  if (!shared) co_return shared.error();
  for (std::size_t k = 0; k < count; ++k) {
    const std::uint64_t begin = k * chunk;
    const std::uint64_t end = std::min(size, begin + chunk);
    SteadyTime stall = deadline_after(std::chrono::seconds(60));
    while (fetch && fetch->state() == BlobFetch::State::kStreaming && fetch->available() < end &&
           !fetch->uncached()) {
      const std::uint64_t before = fetch->available();
      co_await fetch->progress().wait_until(stall);
      count_received(*fetch, seen);
      if (fetch->available() > before) stall = deadline_after(std::chrono::seconds(60));
      if (std::chrono::steady_clock::now() >= stall) co_return Error(Errc::kTimeout, "stalled");
    }
    if (fetch && fetch->state() == BlobFetch::State::kFailed) co_return fetch->error();
    if (fetch && fetch->uncached() && fetch->file_limit() < end) {
      co_return Error(Errc::kStorage, "no room to cache it here: served over HTTP only");
    }
    const int piece = static_cast<int>(k == 0 ? blob->first_piece : blob->piece);
    const std::string* root = &options_.root_cert;  // the publisher outlives its jobs
    auto job = [fd, begin, end, piece, root] {
      return p2p::Swarm::make_metainfo(fd, begin, end - begin, piece, *root);
    };
    auto metainfo = co_await offload(node_.pool(), std::move(job));
    if (!metainfo) co_return metainfo.error();
    p2p::Swarm::Add add;
    add.metainfo = *metainfo;
    add.file = *shared;
    add.offset = begin;
    add.seed = true;
    add.first_seed = options_.first_seed;
    auto id = swarm_.add(std::move(add), nullptr);
    if (!id) co_return id.error();
    blob->torrents.push_back(*id);
    blob->metainfo[k] = std::move(*metainfo);
    blob->changed.notify_all();
    LOG_DEBUG("swarm: blob of {} bytes: chunk {} published", size, k);
  }
  // Published bytes that turn out not to match the digest are withdrawn.
  while (fetch && fetch->state() == BlobFetch::State::kStreaming) {
    co_await fetch->progress().wait_until(deadline_after(std::chrono::seconds(60)));
  }
  if (fetch && fetch->state() == BlobFetch::State::kFailed) co_return fetch->error();
  if (fetch && fetch->uncached()) co_return Error(Errc::kStorage, "verified but not cached here");
  co_return Status{};
}

}  // namespace layerswarm::supernode
