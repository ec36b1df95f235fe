#include <catch2/catch.hpp>

#include "common/range.h"

using namespace layerswarm;
using Kind = RangeRequest::Kind;

TEST_CASE("Range: the OCI conformance cases on a 3000-byte blob", "[unit][range]") {
  struct Case {
    std::optional<std::string> header;
    Kind kind;
    ByteRange range;
  };
  const Case cases[] = {
      {std::nullopt, Kind::kWhole, {}},
      {"bytes=500-1499", Kind::kPartial, {500, 1499}},
      {"bytes=500-", Kind::kPartial, {500, 2999}},
      {"bytes=-500", Kind::kPartial, {2500, 2999}},
      {"bytes=2000-5000", Kind::kPartial, {2000, 2999}},  // clamped
      {"bytes=500-0", Kind::kUnsatisfiable, {}},
      {"bytes=5000-10000", Kind::kUnsatisfiable, {}},
      {"bytes=3000-", Kind::kUnsatisfiable, {}},
      {"bytes=2999-", Kind::kPartial, {2999, 2999}},
      {"bytes=0-0", Kind::kPartial, {0, 0}},
      {"bytes=-5000", Kind::kPartial, {0, 2999}},
      {"bytes=-0", Kind::kUnsatisfiable, {}},
      {"bytes=abc", Kind::kUnsatisfiable, {}},
      {"bytes=1-x", Kind::kUnsatisfiable, {}},
      {"bytes=--1", Kind::kUnsatisfiable, {}},
      {"bytes= 10 - 20 ", Kind::kPartial, {10, 20}},
      {"items=0-1", Kind::kWhole, {}},
      {"bytes=0-1,5-6", Kind::kWhole, {}},
      {"bytes=18446744073709551615-", Kind::kUnsatisfiable, {}},
      {"bytes=99999999999999999999-", Kind::kUnsatisfiable, {}},  // overflow
  };
  for (const auto& c : cases) {
    INFO(c.header.value_or("(none)"));
    const auto r = parse_range(c.header, 3000);
    CHECK(r.kind == c.kind);
    if (c.kind == Kind::kPartial) CHECK(r.range == c.range);
  }
}

TEST_CASE("Range on an empty blob is never satisfiable", "[unit][range]") {
  CHECK(parse_range("bytes=0-", 0).kind == Kind::kUnsatisfiable);
  CHECK(parse_range("bytes=-1", 0).kind == Kind::kUnsatisfiable);
  CHECK(parse_range(std::nullopt, 0).kind == Kind::kWhole);
}

TEST_CASE("Content-Range", "[unit][range]") {
  CHECK(content_range({500, 1499}, 3000) == "bytes 500-1499/3000");
}
