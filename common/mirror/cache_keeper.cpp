#include "common/mirror/cache_keeper.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/log.h"
#include "common/store.h"

namespace layerswarm::mirror {
namespace {

struct Disk {
  std::uint64_t total = 0;
  std::uint64_t free = 0;  // available to us
};

std::optional<Disk> disk_of(const std::string& dir) {
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return std::nullopt;
  return Disk{static_cast<std::uint64_t>(v.f_blocks) * v.f_frsize,
              static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize};
}

std::uint64_t minus(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

// The scrub reads this much per step (one pool job).
constexpr std::size_t kScrubStep = 1 << 20;
// Blobs listed per step of the scrub's walk.
constexpr std::size_t kScrubSlice = 64;
// The most blobs one eviction removes (each an unlink and an index write).
constexpr std::size_t kMaxEvictions = 100'000;

}  // namespace

CacheKeeper::Reservation& CacheKeeper::Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    Reservation old(std::move(*this));  // given back at the end of this scope
    reserved_ = std::move(o.reserved_);
    bytes_ = o.bytes_;
  }
  return *this;
}

CacheKeeper::Reservation::~Reservation() {
  if (reserved_) *reserved_ -= std::min(*reserved_, bytes_);
  reserved_.reset();
}

CacheKeeper::CacheKeeper(asio::any_io_executor executor, Store& store, asio::thread_pool& pool,
                         Counters& counters, KeeperOptions options)
    : executor_(executor),
      store_(store),
      pool_(pool),
      counters_(counters),
      options_(options),
      timer_(std::make_unique<asio::steady_timer>(executor)),
      space_timer_(std::make_unique<asio::steady_timer>(executor)) {}

CacheKeeper::~CacheKeeper() { stop(); }

Status CacheKeeper::start() {
  const auto disk = disk_of(store_.dir());
  if (!disk) {
    return Error(Errc::kStorage, "cannot read the size of the filesystem of " + store_.dir() +
                                     ": " + std::strerror(errno));
  }
  // Kept free beyond a new blob: 1% of the filesystem, at most 64 MiB.
  margin_ = std::min<std::uint64_t>(disk->total / 100, 64 << 20);
  if (options_.max_size) {
    budget_ = options_.max_size->of(disk->total);
    if (*budget_ < (1 << 20)) {
      return Error(Errc::kConfigInvalid, "cache.max_size: " + format_size(*budget_) +
                                             " of this filesystem is less than 1 MiB");
    }
    evict_target_ = std::min(*budget_, options_.evict_to.of(*budget_));
    LOG_INFO("cache budget {} (evicting down to {} when crossed); {} in use", format_size(*budget_),
             format_size(evict_target_), format_size(store_.used_bytes()));
    if (store_.used_bytes() > *budget_) {
      asio::co_spawn(executor_, evict_down_to(evict_target_, "over the budget at start"),
                     asio::detached);
    }
  }
  if (options_.scrub_interval.count() > 0) {
    asio::co_spawn(executor_, scrub_loop(), asio::detached);
  }
  asio::co_spawn(executor_, space_loop(), asio::detached);
  return {};
}

std::uint64_t CacheKeeper::capacity() const {
  if (budget_) return *budget_;
  const auto disk = disk_of(store_.dir());
  return disk ? disk->total : 0;
}

void CacheKeeper::stop() {
  *alive_ = false;
  if (timer_) timer_->cancel();
  if (space_timer_) space_timer_->cancel();
}

Task<void> CacheKeeper::pause(std::chrono::milliseconds d) {
  timer_->expires_after(d);
  boost::system::error_code ec;
  co_await timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

Task<void> CacheKeeper::evict_down_to(std::uint64_t target, const char* why) {
  std::weak_ptr<bool> alive = alive_;
  Store* store = &store_;
  auto job = [store, target] { return store->evict(target, kMaxEvictions); };
  auto stats = co_await offload(pool_, std::move(job));
  if (alive.expired()) co_return;
  if (!stats) {
    LOG_ERROR("cache eviction failed: {}", stats.error().what());
    co_return;
  }
  counters_.evicted_blobs += stats->blobs;
  counters_.evicted_bytes += stats->bytes;
  if (stats->blobs > 0 || stats->skipped > 0) {
    LOG_INFO(
        "cache eviction ({}): removed {} blobs ({}), least recently used first; {} in use, "
        "{} kept as in use or pinned",
        why, stats->blobs, format_size(stats->bytes), format_size(store_.used_bytes()),
        stats->skipped);
  }
}

Task<std::optional<CacheKeeper::Reservation>> CacheKeeper::make_room(std::uint64_t size) {
  if (!store_.writable()) co_return std::nullopt;
  if (budget_) {
    if (size > *budget_) co_return std::nullopt;  // never fits
    const std::uint64_t limit = minus(*budget_, *reserved_ + size);
    if (store_.used_bytes() > limit) {
      co_await evict_down_to(std::min(limit, evict_target_), "room for a new blob");
      if (store_.used_bytes() > minus(*budget_, *reserved_ + size)) co_return std::nullopt;
    }
  }
  // The disk itself: shared with others, it may be fuller than the budget says.
  if (auto disk = disk_of(store_.dir())) {
    const std::uint64_t need = size + margin_;
    const std::uint64_t pending = *reserved_;  // reserved bytes not written yet, roughly
    if (disk->free < need + pending) {
      const std::uint64_t short_by = need + pending - disk->free;
      co_await evict_down_to(minus(store_.used_bytes(), short_by), "the disk is full");
      disk = disk_of(store_.dir());
      if (!disk || disk->free < need) co_return std::nullopt;
    }
  }
  *reserved_ += size;
  co_return Reservation(reserved_, size);
}

Task<void> CacheKeeper::on_no_space() {
  const std::uint64_t used = store_.used_bytes();
  const std::uint64_t target =
      budget_ ? std::min(evict_target_, used - used / 10) : used - used / 10;
  co_await evict_down_to(target, "a write found the disk full");
}

Task<void> CacheKeeper::enforce() {
  if (budget_ && store_.used_bytes() > *budget_) {
    co_await evict_down_to(evict_target_, "over the budget");
  }
}

// Checks a read-only cache (started on a full disk) for returning space.
Task<void> CacheKeeper::space_loop() {
  std::weak_ptr<bool> alive = alive_;
  for (long i = 0; i < (1L << 40) && !alive.expired() && *alive_; ++i) {
    space_timer_->expires_after(options_.space_check_interval);
    boost::system::error_code ec;
    co_await space_timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired() || !*alive_) co_return;
    if (store_.writable()) continue;
    Store* store = &store_;
    auto job = [store] { return store->reopen_writable(); };
    auto reopened = co_await offload(pool_, std::move(job));
    if (alive.expired()) co_return;
    if (!reopened) LOG_DEBUG("cache still read-only: {}", reopened.error().what());
  }
}

// One pass over every cached blob per scrub_interval, at most scrub_rate bytes per second.
// What the scrub finds is what a changed byte on disk with unchanged metadata would be
// served as; the cheap check (file identity) catches the rest when a blob is opened.
Task<void> CacheKeeper::scrub_loop() {
  std::weak_ptr<bool> alive = alive_;
  auto gone = [&] { return alive.expired() || !*alive_; };
  for (long pass = 0; pass < (1L << 40) && !gone(); ++pass) {
    co_await pause(options_.scrub_interval);
    if (gone()) co_return;
    const SteadyTime started = std::chrono::steady_clock::now();
    std::uint64_t bytes = 0, blobs = 0, bad = 0;
    std::string cursor;
    for (long slices = 0; slices < (1L << 30) && !gone(); ++slices) {
      Store* store = &store_;
      auto job = [store, cursor] { return store->blobs_after(cursor, kScrubSlice); };
      auto list = co_await offload(pool_, std::move(job));
      if (gone() || list.empty()) break;
      cursor = list.back().first.str();
      for (const auto& [digest, size] : list) {
        auto blob = store_.open_blob(digest);  // catches changed files on its own
        if (!blob) continue;
        Hasher hasher(digest.algorithm());
        std::vector<char> buf(kScrubStep);
        const int fd = blob->fd.get();
        bool read_failed = false;
        for (std::uint64_t off = 0; off < blob->size && !gone();) {
          const std::size_t want =
              static_cast<std::size_t>(std::min<std::uint64_t>(kScrubStep, blob->size - off));
          char* data = buf.data();
          Hasher* h = &hasher;
          auto step = [fd, data, want, off, h]() -> long {
            const ssize_t n = ::pread(fd, data, want, static_cast<off_t>(off));
            if (n > 0) h->update(data, static_cast<std::size_t>(n));
            return static_cast<long>(n);
          };
          const long n = co_await offload(pool_, std::move(step));
          if (gone()) co_return;
          if (n <= 0) {
            read_failed = true;
            break;
          }
          off += static_cast<std::uint64_t>(n);
          bytes += static_cast<std::uint64_t>(n);
          counters_.scrubbed_bytes += static_cast<std::uint64_t>(n);
          // Pace: `bytes` may take bytes / rate seconds since the pass started.
          const auto due =
              started +
              std::chrono::microseconds(static_cast<std::int64_t>(
                  static_cast<double>(bytes) * 1e6 / static_cast<double>(options_.scrub_rate)));
          const auto now = std::chrono::steady_clock::now();
          if (due > now) {
            co_await pause(std::chrono::duration_cast<std::chrono::milliseconds>(due - now) +
                           std::chrono::milliseconds(1));
          }
        }
        if (gone()) co_return;
        ++blobs;
        if (read_failed) {
          ++bad;
          store_.quarantine(digest, "the scrub could not read it back");
          continue;
        }
        const Digest got = hasher.finish();
        if (!(got == digest)) {
          ++bad;
          store_.quarantine(digest, "the scrub found bytes hashing to " + got.str());
        }
      }
    }
    if (gone()) co_return;
    LOG_INFO("cache scrub: {} blobs ({}) hashed again, {} quarantined", blobs, format_size(bytes),
             bad);
  }
}

}  // namespace layerswarm::mirror
