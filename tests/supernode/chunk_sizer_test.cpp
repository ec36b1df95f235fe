#include <catch2/catch.hpp>
#include <fstream>

#include "supernode/chunk_sizer.h"
#include "supernode/config.h"
#include "tests/support/temp_dir.h"

using namespace layerswarm;
using namespace layerswarm::supernode;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kMiB = 1 << 20;

double mbit(double m) { return m * 1e6 / 8; }  // bytes per second

}  // namespace

TEST_CASE("a chunk has at least eight pieces when its size allows", "[supernode][chunks]") {
  ChunkSizing s;                                    // 256 KiB pieces
  CHECK(piece_size_for(4 * kMiB, s) == 256 << 10);  // 16 pieces
  CHECK(piece_size_for(2 * kMiB, s) == 256 << 10);  // 8 pieces
  CHECK(piece_size_for(1 * kMiB, s) == 128 << 10);  // a chunk sized down for a slow link
  CHECK(piece_size_for(256 << 10, s) == 32 << 10);
  CHECK(piece_size_for(3 * kMiB, s) == 256 << 10);  // 12 pieces
  CHECK(piece_size_for(s.piece, s) == 32 << 10);
  SECTION("never below one block of 16 KiB, and always a divisor of the chunk") {
    s.piece = 16 << 10;
    CHECK(piece_size_for(16 << 10, s) == 16 << 10);
    CHECK(piece_size_for(64 << 10, s) == 16 << 10);
    s.piece = 1 << 20;
    for (std::uint64_t chunk = s.piece; chunk <= 16 * kMiB; chunk += s.piece) {
      const std::uint64_t p = piece_size_for(chunk, s);
      INFO(chunk);
      CHECK(chunk % p == 0);
      CHECK((p & (p - 1)) == 0);
      CHECK((chunk / p >= kMinPiecesPerChunk || p == 16 << 10));
    }
  }
}

TEST_CASE("a blob's first chunk has pieces a quarter of the others'", "[supernode][chunks]") {
  ChunkSizing s;                                          // 256 KiB pieces
  CHECK(first_piece_size_for(4 * kMiB, s) == 64 << 10);   // 64 pieces
  CHECK(first_piece_size_for(2 * kMiB, s) == 64 << 10);   // 32 pieces
  CHECK(first_piece_size_for(1 * kMiB, s) == 32 << 10);   // a quarter of 128 KiB
  CHECK(first_piece_size_for(256 << 10, s) == 16 << 10);  // not below a block
  CHECK(first_piece_size_for(16 << 10, s) == 16 << 10);
  s.piece = 16 << 10;
  CHECK(first_piece_size_for(4 * kMiB, s) == 16 << 10);  // never above the others'
  s.piece = 1 << 20;
  for (std::uint64_t chunk = s.piece; chunk <= 16 * kMiB; chunk += s.piece) {
    const std::uint64_t p = first_piece_size_for(chunk, s);
    INFO(chunk);
    CHECK(piece_size_for(chunk, s) % p == 0);
    CHECK((p & (p - 1)) == 0);
    CHECK(p >= 16 << 10);
  }
}

TEST_CASE("a blob's chunks are sized to the upstream link", "[supernode][chunks]") {
  ChunkSizing s;  // 4 MiB .. 1 MiB, 256 KiB pieces, 3 s
  SECTION("a chunk takes at most chunk_time: halved from the largest down to the smallest") {
    CHECK(chunk_size_for(mbit(1000), s) == 4 * kMiB);
    CHECK(chunk_size_for(mbit(20), s) == 4 * kMiB);  // 4 MiB in 1.7 s
    CHECK(chunk_size_for(mbit(10), s) == 2 * kMiB);  // 4 MiB would take 3.4 s
    CHECK(chunk_size_for(mbit(5), s) == 1 * kMiB);   // 2 MiB would take 3.4 s
    CHECK(chunk_size_for(mbit(1), s) == 1 * kMiB);   // never below the smallest
    CHECK(chunk_size_for(0, s) == 1 * kMiB);
  }
  SECTION("the boundaries are exact") {
    const double secs = 3.0;
    CHECK(chunk_size_for(4.0 * kMiB / secs, s) == 4 * kMiB);
    CHECK(chunk_size_for(4.0 * kMiB / secs - 1, s) == 2 * kMiB);
    CHECK(chunk_size_for(2.0 * kMiB / secs, s) == 2 * kMiB);
    CHECK(chunk_size_for(2.0 * kMiB / secs - 1, s) == 1 * kMiB);
  }
  SECTION("a largest chunk that is not a power of two stays a whole number of pieces") {
    s.max_chunk = 3 * kMiB;
    s.min_chunk = 256 << 10;
    const std::uint64_t c = chunk_size_for(mbit(3), s);
    CHECK(c % s.piece == 0);
    CHECK(c < 3 * kMiB);
    CHECK(c >= s.min_chunk);
  }
  SECTION("min equal to max: fixed chunks") {
    s.min_chunk = s.max_chunk;
    CHECK(chunk_size_for(mbit(1), s) == 4 * kMiB);
  }
}

TEST_CASE("the rate meter measures what downloads receive lately", "[supernode][chunks]") {
  RateMeter meter(4s, 1s);
  const SteadyTime t0{};
  CHECK_FALSE(meter.rate(t0));
  meter.add(1000, t0);
  CHECK_FALSE(meter.rate(t0 + 500ms));  // one sample: no span yet
  for (int i = 1; i <= 20; ++i) meter.add(1000, t0 + i * 100ms);
  // 20 x 1000 bytes over 2 s after the first sample
  REQUIRE(meter.rate(t0 + 2s));
  CHECK(*meter.rate(t0 + 2s) == Approx(10'000));
  SECTION("no sample for longer than the span: downloads stopped, the rate is unknown") {
    CHECK_FALSE(meter.rate(t0 + 3500ms));
  }
  SECTION("an idle gap before new samples does not dilute the rate") {
    const SteadyTime later = t0 + 10min;
    meter.add(500, later);
    CHECK_FALSE(meter.rate(later));  // the old samples left the window
    for (int i = 1; i <= 20; ++i) meter.add(5000, later + i * 100ms);
    REQUIRE(meter.rate(later + 2s));
    CHECK(*meter.rate(later + 2s) == Approx(50'000));
  }
}

TEST_CASE("supernode config: chunk sizing and seeding keys", "[supernode][config]") {
  test::TempDir dir;
  auto load = [&](const std::string& swarm) {
    const std::string file = dir.file("supernode.json");
    std::ofstream(file) << R"({"swarm": )" << swarm << "}";
    Overrides o;
    o.token_file = dir.file("token");
    o.data_dir = dir.path();
    return load_config(file, o);
  };
  SECTION("defaults: 4 MiB down to 1 MiB, 3 s") {
    auto c = load("{}");
    REQUIRE(c);
    CHECK(c->swarm.chunk_size == 4 * kMiB);
    CHECK(c->swarm.min_chunk_size == 1 * kMiB);
    CHECK(c->swarm.chunk_time == 3s);
    CHECK(c->swarm.piece_size == kDefaultPieceSize);
    CHECK(kDefaultPieceSize == 256 << 10);
    CHECK(c->swarm.seed_idle == std::chrono::minutes(30));
  }
  SECTION("a chunk_size below the smallest turns sizing off") {
    auto c = load(R"({"chunk_size": 524288, "piece_size": 131072})");
    REQUIRE(c);
    CHECK(c->swarm.min_chunk_size == 524288);
  }
  SECTION("explicit values") {
    auto c = load(R"({"chunk_size": 8388608, "min_chunk_size": 2097152, "chunk_time": "2s"})");
    REQUIRE(c);
    CHECK(c->swarm.min_chunk_size == 2 * kMiB);
    CHECK(c->swarm.chunk_time == 2s);
    auto idle = load(R"({"seed_idle": "90s"})");
    REQUIRE(idle);
    CHECK(idle->swarm.seed_idle == 90s);
  }
  SECTION("invalid values are refused with the key named") {
    auto odd = load(R"({"min_chunk_size": 100000})");
    REQUIRE_FALSE(odd);
    CHECK_THAT(odd.error().what(), Catch::Contains("swarm.min_chunk_size"));
    auto zero = load(R"({"chunk_time": "0s"})");
    REQUIRE_FALSE(zero);
    CHECK_THAT(zero.error().what(), Catch::Contains("swarm.chunk_time"));
    auto word = load(R"({"chunk_time": "soon"})");
    REQUIRE_FALSE(word);
    CHECK_THAT(word.error().what(), Catch::Contains("chunk_time"));
    auto never = load(R"({"seed_idle": "0s"})");
    REQUIRE_FALSE(never);
    CHECK_THAT(never.error().what(), Catch::Contains("swarm.seed_idle"));
  }
}
