#include <catch2/catch.hpp>

#include "agent/supernode_link.h"

using namespace layerswarm;
using namespace layerswarm::agent;
namespace proto = layerswarm::swarm_protocol;

namespace {

// A layout answer's headers: a 10 MiB blob in 4 MiB chunks of 256 KiB pieces.
Headers layout_headers() {
  Headers h;
  h.add(proto::kBlobSize, std::to_string(10 << 20));
  h.add(proto::kChunkSize, std::to_string(4 << 20));
  h.add(proto::kChunks, "3");
  h.add(proto::kPieceSize, std::to_string(256 << 10));
  h.add(proto::kSeedPort, "6881");
  return h;
}

}  // namespace

TEST_CASE("a layout's first chunk may have smaller pieces", "[unit][swarm_protocol]") {
  Headers h = layout_headers();
  SECTION("absent, chunk 0 has the others' piece size (an older supernode)") {
    auto l = parse_layout(h);
    REQUIRE(l);
    CHECK(l->piece_size_of(0) == 256 << 10);
    CHECK(l->piece_size_of(2) == 256 << 10);
  }
  SECTION("present, it applies to chunk 0 alone") {
    h.add(proto::kFirstPieceSize, std::to_string(64 << 10));
    auto l = parse_layout(h);
    REQUIRE(l);
    CHECK(l->piece_size_of(0) == 64 << 10);
    CHECK(l->piece_size_of(1) == 256 << 10);
    CHECK(l->chunk_length(2) == 2 << 20);
    CHECK(l->fits(0, 4 << 20, 64 << 10));
    CHECK_FALSE(l->fits(0, 4 << 20, 256 << 10));  // chunk 0's metainfo must use the first size
    CHECK(l->fits(2, 2 << 20, 256 << 10));
    CHECK_FALSE(l->fits(2, 4 << 20, 256 << 10));
  }
  SECTION("refused: not a power of two, below a block, above the others' or not a number") {
    for (const char* bad : {"65537", "8192", "524288", "64k", ""}) {
      Headers b = layout_headers();
      b.add(proto::kFirstPieceSize, bad);
      INFO(bad);
      auto l = parse_layout(b);
      REQUIRE_FALSE(l);
      CHECK_THAT(l.error().what(), Catch::Contains("first piece size"));
    }
  }
}
