// The CacheKeeper on a real store and io_context: the scrub finds rot that the cheap check
// (the file's identity) cannot see, and room is made under a budget by LRU eviction.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <filesystem>

#include "common/mirror/cache_keeper.h"
#include "common/store.h"
#include "tests/support/temp_dir.h"

using namespace layerswarm;
using namespace layerswarm::mirror;
using namespace std::chrono_literals;
using layerswarm::test::FakeClock;
using layerswarm::test::TempDir;

namespace {

std::unique_ptr<Store> open_store(const TempDir& dir, const Clock& clock) {
  auto s = Store::open(StoreOptions{dir.path() + "/store", 10min}, clock);
  REQUIRE(s);
  return std::move(*s);
}

// Commits `bytes` under `digest` (which the caller may have made not to match: rot that
// happened with the file's metadata unchanged looks exactly like this to the store).
void put(Store& store, const Digest& digest, const std::string& bytes) {
  auto temp = store.create_temp(digest);
  REQUIRE(temp);
  REQUIRE(::write(temp->fd.get(), bytes.data(), bytes.size()) ==
          static_cast<ssize_t>(bytes.size()));
  REQUIRE(store.commit_blob(*temp, digest, bytes.size()));
}

Task<void> ask_room(CacheKeeper& keeper, std::uint64_t size,
                    std::optional<std::optional<CacheKeeper::Reservation>>& out) {
  out = co_await keeper.make_room(size);
}

// Runs `ioc` until `done()` or 10 s.
void run_until(asio::io_context& ioc, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (int i = 0; i < 100'000 && !done() && std::chrono::steady_clock::now() < deadline; ++i) {
    ioc.run_for(10ms);
  }
}

}  // namespace

TEST_CASE("the scrub quarantines a blob whose bytes rotted under unchanged metadata",
          "[unit][lifecycle]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  asio::io_context ioc;
  asio::thread_pool pool(1);
  Counters counters;
  store->on_quarantine([&] { ++counters.corrupt_blobs; });
  const std::string good(300'000, 'g');
  const Digest good_digest = Digest::sha256_of(good);
  put(*store, good_digest, good);
  const Digest rotten = Digest::sha256_of("what was stored");
  put(*store, rotten, "what is there now");
  REQUIRE(store->open_blob(rotten));  // the cheap check cannot tell

  KeeperOptions options;
  options.scrub_interval = 20ms;
  options.scrub_rate = 1 << 20;
  CacheKeeper keeper(ioc.get_executor(), *store, pool, counters, options);
  REQUIRE(keeper.start());
  run_until(ioc, [&] { return counters.corrupt_blobs.load() == 1 && counters.scrubbed_bytes > 0; });
  keeper.stop();
  CHECK(counters.corrupt_blobs == 1);
  CHECK_FALSE(store->blob_size(rotten));
  CHECK(store->blob_size(good_digest));
  CHECK(counters.scrubbed_bytes >= good.size());
  CHECK_FALSE(std::filesystem::is_empty(dir.path() + "/store/quarantine"));
  pool.join();
}

TEST_CASE("room under a budget: least recently used blobs make way, held ones stay",
          "[unit][lifecycle]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  asio::io_context ioc;
  asio::thread_pool pool(1);
  Counters counters;
  std::vector<Digest> blobs;
  for (char c = 'a'; c <= 'd'; ++c) {
    const std::string bytes(1 << 20, c);
    blobs.push_back(Digest::sha256_of(bytes));
    put(*store, blobs.back(), bytes);
    clock.advance(1h);
  }
  KeeperOptions options;
  options.max_size = *parse_size("5MiB");
  options.evict_to = *parse_size("60%");
  options.scrub_interval = 0ms;
  CacheKeeper keeper(ioc.get_executor(), *store, pool, counters, options);
  REQUIRE(keeper.start());
  CHECK(keeper.budget() == 5u << 20);
  CHECK(keeper.evict_target() == 3u << 20);
  Store::Hold hold = store->hold(blobs[0]);

  std::optional<std::optional<CacheKeeper::Reservation>> room;
  auto ask = [&](std::uint64_t size) { return ask_room(keeper, size, room); };
  // 1 MiB fits beside 4 MiB: nothing goes.
  asio::co_spawn(ioc, ask(1 << 20), asio::detached);
  run_until(ioc, [&] { return room.has_value(); });
  REQUIRE(room);
  CHECK(room->has_value());
  CHECK(counters.evicted_blobs == 0);
  // Another 1 MiB while the first is still reserved: down to the target, oldest first, the
  // held one skipped.
  std::optional<CacheKeeper::Reservation> first = std::move(*room);
  room.reset();
  asio::co_spawn(ioc, ask(1 << 20), asio::detached);
  run_until(ioc, [&] { return room.has_value(); });
  REQUIRE(room);
  CHECK(room->has_value());
  CHECK(store->blob_size(blobs[0]));  // held
  CHECK_FALSE(store->blob_size(blobs[1]));
  CHECK(store->blob_size(blobs[2]));
  CHECK(counters.evicted_blobs == 1);
  // More than the budget never fits: streamed uncached.
  room.reset();
  asio::co_spawn(ioc, ask(6 << 20), asio::detached);
  run_until(ioc, [&] { return room.has_value(); });
  REQUIRE(room);
  CHECK_FALSE(room->has_value());
  keeper.stop();
  pool.join();
}
