// The cache's lifecycle beyond the TTL sweep (docs/architecture.md "The cache's lifecycle"):
// the disk budget (room is made for a download before its bytes are written, by evicting the
// least recently used blobs; a blob that cannot get room streams through uncached), the scrub
// (every cached blob hashed again at a bounded rate; rot is quarantined), and the return of
// space to a cache that started read-only on a full disk.
//
// Threading: the io_context thread; evictions and hashing run on the node's thread pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "common/async.h"
#include "common/mirror/counters.h"
#include "common/size.h"

namespace layerswarm {
class Store;
}

namespace layerswarm::mirror {

struct KeeperOptions {
  std::optional<SizeSpec> max_size;  // none: no budget
  SizeSpec evict_to{0, 0.9, true};   // bytes, or a share of the budget
  std::chrono::milliseconds scrub_interval{std::chrono::hours(24 * 7)};  // 0: no scrub
  std::uint64_t scrub_rate = 16 << 20;                                   // bytes per second
  std::chrono::milliseconds space_check_interval{std::chrono::seconds(10)};
};

class CacheKeeper {
 public:
  CacheKeeper(asio::any_io_executor executor, Store& store, asio::thread_pool& pool,
              Counters& counters, KeeperOptions options);
  ~CacheKeeper();

  // Works out the budget (a share of the filesystem is taken of its size now) and starts the
  // scrub and the space check. Errors: kConfigInvalid (a budget the filesystem cannot hold).
  Status start();
  void stop();

  // Bytes, or nullopt without a budget.
  std::optional<std::uint64_t> budget() const { return budget_; }
  std::uint64_t evict_target() const { return evict_target_; }
  // The budget, or the filesystem's size without one (0 when it cannot be read).
  std::uint64_t capacity() const;

  // Room set aside for a download in progress; given back when destroyed.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(std::shared_ptr<std::uint64_t> reserved, std::uint64_t bytes)
        : reserved_(std::move(reserved)), bytes_(bytes) {}
    Reservation(Reservation&& o) noexcept : reserved_(std::move(o.reserved_)), bytes_(o.bytes_) {}
    Reservation& operator=(Reservation&& o) noexcept;
    ~Reservation();

   private:
    std::shared_ptr<std::uint64_t> reserved_;
    std::uint64_t bytes_ = 0;
  };
  // Room for a new blob of `size` bytes: evicts least recently used blobs until the cache,
  // with the downloads in progress, stays within the budget and the disk has `size` free (and
  // a margin). nullopt: no room (the budget or the disk is taken by blobs in use or pinned, or
  // the cache is read-only): the blob streams through uncached.
  Task<std::optional<Reservation>> make_room(std::uint64_t size);
  // A write failed for lack of space: evicts down to the eviction target (or, without a
  // budget, a tenth of the cache) so later blobs are cached again.
  Task<void> on_no_space();
  // Over the budget (manifests grew, blobs once held were released): evicts down to the
  // eviction target.
  Task<void> enforce();

 private:
  Task<void> evict_down_to(std::uint64_t target, const char* why);
  Task<void> scrub_loop();
  Task<void> space_loop();
  Task<void> pause(std::chrono::milliseconds d);

  asio::any_io_executor executor_;
  Store& store_;
  asio::thread_pool& pool_;
  Counters& counters_;
  KeeperOptions options_;
  std::optional<std::uint64_t> budget_;
  std::uint64_t evict_target_ = 0;
  std::uint64_t margin_ = 0;  // kept free on the disk beyond a new blob
  std::shared_ptr<std::uint64_t> reserved_ = std::make_shared<std::uint64_t>(0);
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<asio::steady_timer> timer_;
  std::unique_ptr<asio::steady_timer> space_timer_;
};

}  // namespace layerswarm::mirror
