#include "agent/seeder.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/log.h"
#include "common/p2p/swarm.h"
#include "common/service.h"
#include "common/store.h"

namespace layerswarm::agent {
namespace {

namespace proto = swarm_protocol;

// The feed is long-polled (the supernode answers within ~10 s); this bounds one poll.
constexpr std::chrono::seconds kDemandPollTimeout{30};
// Iterations of the feed loop: it runs for the agent's life, one poll per iteration (at least
// retry_pause apart when failing), so this bound is years away.
constexpr long kMaxDemandPolls = 1'000'000'000;
// libtorrent removes a torrent within milliseconds; a re-add waits for it this often at most.
constexpr int kBusyRetries = 50;
constexpr std::chrono::milliseconds kBusyPause{100};

}  // namespace

Seeder::Seeder(asio::any_io_executor executor, SupernodeLink& link, p2p::Swarm& swarm,
               SeederOptions options)
    : executor_(executor), link_(link), swarm_(swarm), options_(options) {}

Seeder::~Seeder() {
  *alive_ = false;
  if (check_timer_) check_timer_->cancel();
}

std::size_t Seeder::loaded_torrents() const {
  std::size_t n = 0;
  for (const auto& [key, s] : seeding_) n += s.torrents.size();
  return n;
}

std::size_t Seeder::downloading_torrents() const {
  const std::size_t all = swarm_.torrents();
  const std::size_t seeding = loaded_torrents();
  return all > seeding ? all - seeding : 0;
}

void Seeder::start(Store& store) {
  store_ = &store;
  check_timer_ = std::make_shared<asio::steady_timer>(executor_);
  asio::co_spawn(
      executor_,
      run_periodically(check_timer_, options_.check_interval, alive_, [this] { check_idle(); }),
      asio::detached);
  asio::co_spawn(executor_, follow_demand(), asio::detached);
}

Task<void> Seeder::follow_demand() {
  std::weak_ptr<bool> alive = alive_;
  std::uint64_t after = 0;
  bool warned = false;
  for (long i = 0; i < kMaxDemandPolls; ++i) {
    auto answer = co_await link_.get(proto::demand_target(after), 1 << 20, kDemandPollTimeout);
    if (alive.expired()) co_return;
    Result<proto::Demand> demand = Error(Errc::kUpstreamUnavailable);
    if (!answer) {
      demand = answer.error();
    } else if (answer->status != 200) {
      demand =
          Error(Errc::kUpstreamUnavailable, "supernode answered " + std::to_string(answer->status));
    } else {
      demand = proto::parse_demand(answer->body);
    }
    if (!demand) {
      if (!warned) LOG_WARN("swarm: demand feed: {}; retrying", demand.error().what());
      warned = true;
      asio::steady_timer pause(executor_, options_.retry_pause);
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (alive.expired()) co_return;
      continue;
    }
    if (warned) LOG_INFO("swarm: demand feed back");
    warned = false;
    after = demand->next;
    ++batch_;
    // The feed lists the oldest first; the newest are loaded first.
    for (auto b = demand->blobs.rbegin(); b != demand->blobs.rend(); ++b) on_demand(*b);
  }
}

void Seeder::on_demand(const proto::BlobRef& blob) {
  const std::string key = blob.digest.str();
  if (auto it = seeding_.find(key); it != seeding_.end()) {
    it->second.last_demand = std::chrono::steady_clock::now();
    it->second.batch = batch_;
    return;
  }
  if (loading_.count(key)) return;
  const auto size = store_->blob_size(blob.digest);
  if (size && *size < options_.min_blob_size) return;
  if (!size) {  // not ours to seed, yet
    if (wanted_.size() < kMaxWanted || wanted_.count(key)) {
      wanted_.insert_or_assign(key, std::make_pair(blob, std::chrono::steady_clock::now()));
    }
    return;
  }
  wanted_.erase(key);
  loading_.insert(key);
  asio::co_spawn(executor_, load(blob, batch_), asio::detached);
}

Task<void> Seeder::load(proto::BlobRef blob, std::uint64_t batch) {
  std::weak_ptr<bool> alive = alive_;
  const std::string key = blob.digest.str();
  std::optional<std::string> record = store_->get_extra(blob.digest);
  if (!record) {
    auto fetched = co_await fetch_record(blob);
    if (alive.expired()) co_return;
    if (!fetched) {
      LOG_WARN("blob {}: not seeded: {}", key, fetched.error().what());
      loading_.erase(key);
      co_return;
    }
    record = std::move(*fetched);
    if (auto s = store_->put_extra(blob.digest, *record); !s) {
      LOG_WARN("blob {}: seeding record not saved: {}", key, s.error().what());
    }
  }
  // A failed swarm download of this blob may still be leaving libtorrent (kBusy).
  Status added = Error(Errc::kBusy);
  for (int i = 0; i < kBusyRetries && !seeding_.count(key); ++i) {
    added = add_torrents(blob.digest, *record, batch);
    if (added || added.error().code != make_error_code(Errc::kBusy)) break;
    asio::steady_timer pause(executor_, kBusyPause);
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired()) co_return;
  }
  loading_.erase(key);
  if (added || seeding_.count(key)) co_return;
  if (added.error().code == make_error_code(Errc::kTooLarge)) {
    LOG_INFO("blob {}: not seeded: {}", key, added.error().what());  // the caps at work
  } else {
    LOG_WARN("blob {}: not seeded: {}", key, added.error().what());
  }
}

// Chunk 0's answer carries the layout; the other chunks follow. Each metainfo is checked against
// the layout and the cached blob's size before it is used.
Task<Result<std::string>> Seeder::fetch_record(const proto::BlobRef& blob) {
  const auto size = store_->blob_size(blob.digest);
  if (!size) co_return Error(Errc::kBlobUnknown, "no longer cached");
  std::vector<std::string> metainfo;
  Layout layout;
  for (std::size_t k = 0; k < proto::kMaxChunks; ++k) {
    auto answer = co_await link_.get(proto::chunk_target(blob, k), proto::kMaxMetainfo);
    if (!answer) co_return answer.error();
    if (answer->status != 200) {
      co_return Error(Errc::kUpstreamUnavailable, "supernode answered " +
                                                      std::to_string(answer->status) +
                                                      " for chunk " + std::to_string(k));
    }
    if (k == 0) {
      auto l = parse_layout(answer->headers);
      if (!l) co_return l.error();
      if (l->size != *size) co_return Error(Errc::kBadUpstreamResponse, "size differs");
      layout = *l;
    }
    auto info = p2p::Swarm::inspect(answer->body);
    if (!info) co_return info.error();
    if (!layout.fits(k, info->length, info->piece_length)) {
      co_return Error(Errc::kBadUpstreamResponse, "metainfo does not match the blob's layout");
    }
    metainfo.push_back(std::move(answer->body));
    if (k + 1 >= layout.chunks) break;
  }
  co_return make_record(layout, metainfo);
}

std::string Seeder::make_record(const Layout& layout, const std::vector<std::string>& metainfo) {
  nlohmann::json encoded = nlohmann::json::array();
  for (const auto& m : metainfo) encoded.push_back(base64_encode(m));
  const nlohmann::json record = {{"size", layout.size},
                                 {"chunk_size", layout.chunk_size},
                                 {"piece_size", layout.piece_size},
                                 {"first_piece_size", layout.first_piece_size},
                                 {"metainfo", std::move(encoded)}};
  return record.dump();
}

bool Seeder::room_for(std::size_t torrents, std::uint64_t batch) const {
  std::size_t kept_blobs = 0;  // blobs wanted in this batch or later: they stay
  std::size_t kept_torrents = 0;
  for (const auto& [key, s] : seeding_) {
    if (s.batch < batch) continue;
    ++kept_blobs;
    kept_torrents += s.torrents.size();
  }
  // The first blob of a batch always loads, even one over the torrent cap on its own.
  return kept_blobs == 0 ||
         (kept_blobs + 1 <= options_.max_blobs &&
          kept_torrents + torrents + downloading_torrents() <= options_.max_torrents);
}

Status Seeder::add_torrents(const Digest& digest, const std::string& text, std::uint64_t batch) {
  auto blob = store_->open_blob(digest);
  if (!blob) return blob.error();
  const nlohmann::json record = nlohmann::json::parse(text, nullptr, false);
  if (!record.is_object() || !record.contains("metainfo") || !record["metainfo"].is_array() ||
      !record.contains("chunk_size") || !record["chunk_size"].is_number_unsigned() ||
      record["chunk_size"].get<std::uint64_t>() == 0) {
    return Error(Errc::kStorage, "seeding record unusable");
  }
  if (!room_for(record["metainfo"].size(), batch)) {
    return Error(Errc::kTooLarge, "the seeding caps are full of blobs wanted as recently");
  }
  auto file = p2p::SharedFile::dup(blob->fd.get());
  if (!file) return file.error();
  const std::uint64_t chunk = record["chunk_size"].get<std::uint64_t>();
  std::vector<std::uint64_t> ids;
  std::uint64_t offset = 0;
  Status status;
  for (const auto& m : record["metainfo"]) {
    auto bytes = m.is_string() ? base64_decode(m.get<std::string>()) : std::nullopt;
    auto info = bytes ? p2p::Swarm::inspect(*bytes)
                      : Result<p2p::ChunkInfo>(Error(Errc::kBadUpstreamResponse));
    if (!info || offset + info->length > blob->size) {
      status = Error(Errc::kStorage, "seeding record does not match the blob");
      break;
    }
    p2p::Swarm::Add add;
    add.metainfo = std::move(*bytes);
    add.file = *file;
    add.offset = offset;
    add.seed = true;
    add.trackers = link_.trackers();
    auto id = swarm_.add(std::move(add), nullptr);
    if (!id) {
      status = id.error();
      break;
    }
    ids.push_back(*id);
    offset += chunk;
  }
  if (status && offset < blob->size) status = Error(Errc::kStorage, "seeding record too short");
  if (!status) {
    for (auto id : ids) swarm_.remove(id);
    return status;
  }
  LOG_INFO("blob {}: seeding on demand ({} chunk torrents)", digest.str(), ids.size());
  seeding_[digest.str()] =
      Seeded{std::move(ids), std::chrono::steady_clock::now(), 0, store_->hold(digest), batch};
  enforce_cap();
  return {};
}

void Seeder::adopt(const Digest& digest, std::vector<std::uint64_t> torrents, const Layout& layout,
                   const std::vector<std::string>& metainfo) {
  const std::string record = make_record(layout, metainfo);
  const std::string key = digest.str();
  // Its own download's demand, remembered while the blob was not cached, is this adoption: kept,
  // it would load the blob again at the next idle check even after a cap pushed it out.
  wanted_.erase(key);
  if (auto old = seeding_.find(key); old != seeding_.end()) {
    for (auto id : old->second.torrents) swarm_.remove(id);
  }
  LOG_INFO("blob {}: seeding after its download ({} chunk torrents)", key, torrents.size());
  seeding_[key] = Seeded{std::move(torrents), std::chrono::steady_clock::now(), 0,
                         store_->hold(digest), ++batch_};
  if (auto s = store_->put_extra(digest, record); !s) {
    LOG_WARN("blob {}: seeding record not saved: {}", key, s.error().what());
  }
  enforce_cap();
}

void Seeder::unload(const std::string& key, const char* why) {
  auto it = seeding_.find(key);
  if (it == seeding_.end()) return;
  for (auto id : it->second.torrents) swarm_.remove(id);
  LOG_INFO("blob {}: stopped seeding ({})", key, why);
  seeding_.erase(it);
  trim_pending_ = true;
}

// Over a cap: the blob wanted least recently goes first. The torrent cap counts the downloads'
// torrents too, and leaves the last blob loaded even when it alone is over it: a blob seeds
// whole or not at all.
void Seeder::enforce_cap() {
  std::size_t torrents = std::max(swarm_.torrents(), loaded_torrents());  // downloads' too
  for (std::size_t i = 0; i < 1'000'000 && !seeding_.empty(); ++i) {
    const bool too_many_blobs = seeding_.size() > options_.max_blobs;
    const bool too_many_torrents = seeding_.size() > 1 && torrents > options_.max_torrents;
    if (!too_many_blobs && !too_many_torrents) break;
    auto oldest = seeding_.begin();
    for (auto it = seeding_.begin(); it != seeding_.end(); ++it) {
      if (it->second.last_demand < oldest->second.last_demand) oldest = it;
    }
    torrents -= oldest->second.torrents.size();
    unload(oldest->first,
           too_many_blobs ? "too many blobs seeding" : "too many chunk torrents seeding");
  }
}

// Blobs the cache dropped stop at once; blobs idle for `idle` stop unless peers are still
// downloading from them (their upload counters moved since the last check).
void Seeder::check_idle() {
  if (std::exchange(trim_pending_, false)) release_free_memory();
  const SteadyTime now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, const char*>> gone;
  for (auto& [key, s] : seeding_) {
    auto digest = Digest::parse(key);
    if (!digest || !store_->blob_size(*digest)) {
      gone.emplace_back(key, "no longer cached");
      continue;
    }
    if (now - s.last_demand < options_.idle) continue;
    std::uint64_t uploaded = 0;
    for (auto id : s.torrents) uploaded += swarm_.uploaded(id);
    if (uploaded > s.uploaded) {
      s.uploaded = uploaded;
      s.last_demand = now;
      continue;
    }
    gone.emplace_back(key, "idle");
  }
  for (const auto& [key, why] : gone) unload(key, why);
  std::vector<swarm_protocol::BlobRef> now_cached;
  for (auto it = wanted_.begin(); it != wanted_.end();) {
    const auto& [blob, since] = it->second;
    if (store_->blob_size(blob.digest)) {
      now_cached.push_back(blob);
    } else if (now - since < kWantedMemory) {
      ++it;
      continue;
    }
    it = wanted_.erase(it);
  }
  for (const auto& blob : now_cached) on_demand(blob);
}

}  // namespace layerswarm::agent
