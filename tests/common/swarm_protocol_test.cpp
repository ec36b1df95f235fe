// The swarm API's paths: every valid repository name round-trips, whatever segments it has
// (`chunks`, `blobs`), and malformed targets are refused with the right error.
#include <catch2/catch.hpp>

#include "common/swarm_protocol.h"

using namespace layerswarm;
using namespace layerswarm::swarm_protocol;

namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

BlobRef blob(std::string registry, std::string repository) {
  return BlobRef{std::move(registry), std::move(repository), *Digest::parse(kDigest)};
}

}  // namespace

TEST_CASE("swarm paths round-trip for every repository name", "[unit][swarm_protocol]") {
  const std::vector<BlobRef> refs = {
      blob("docker.io", "library/busybox"), blob("registry.example:5000", "team/chunks"),
      blob("", "chunks/chunks/7"),          blob("ghcr.io", "x/blobs/y"),
      blob("127.0.0.1:5000", "a"),          blob("docker.io", "a/chunks/0/blobs/sha256")};
  for (const auto& b : refs) {
    INFO(b.registry << " " << b.repository);
    auto layout = parse_target(layout_target(b));
    REQUIRE(layout);
    CHECK(layout->kind == Request::Kind::kLayout);
    CHECK(layout->blob->registry == b.registry);
    CHECK(layout->blob->repository == b.repository);
    CHECK(layout->blob->digest == b.digest);
    for (std::size_t k : {std::size_t{0}, std::size_t{9}, std::size_t{12345}}) {
      auto chunk = parse_target(chunk_target(b, k));
      REQUIRE(chunk);
      CHECK(chunk->kind == Request::Kind::kChunk);
      CHECK(chunk->chunk == k);
      CHECK(chunk->blob->repository == b.repository);
      CHECK(chunk->blob->registry == b.registry);
    }
  }
  auto demand = parse_target(demand_target(42));
  REQUIRE(demand);
  CHECK(demand->kind == Request::Kind::kDemand);
  CHECK(demand->after == 42);
}

TEST_CASE("malformed swarm targets are refused", "[unit][swarm_protocol]") {
  struct Case {
    std::string target;
    Errc error;
  };
  const std::string d = kDigest;
  const std::vector<Case> cases = {
      {"/v2/x/blobs/" + d, Errc::kNotFound},
      {"/swarm/v1/x/blobs/" + d + "?ns=docker.io", Errc::kNotFound},  // the old form
      {"/swarm/v1/blobs/sha256:abc?repo=x", Errc::kDigestInvalid},
      {"/swarm/v1/blobs/" + d + "/chunks/?repo=x", Errc::kNotFound},
      {"/swarm/v1/blobs/" + d + "/chunks/-1?repo=x", Errc::kNotFound},
      {"/swarm/v1/blobs/" + d + "/chunks/1x?repo=x", Errc::kNotFound},
      {"/swarm/v1/blobs/" + d + "/chunks/99999999999999999999?repo=x", Errc::kNotFound},
      {"/swarm/v1/blobs/" + d + "/other/1?repo=x", Errc::kNotFound},
      {"/swarm/v1/blobs/" + d, Errc::kNameInvalid},                  // no repo
      {"/swarm/v1/blobs/" + d + "?repo=UPPER", Errc::kNameInvalid},  // grammar
      {"/swarm/v1/blobs/" + d + "?repo=a&repo=b", Errc::kNameInvalid},
      {"/swarm/v1/blobs/" + d + "?repo=a&ns=bad%20host", Errc::kNameInvalid},
      {"/swarm/v1/blobs/" + d + "?repo=a%zz", Errc::kNameInvalid},
      {"/swarm/v1/demand?after=x", Errc::kNotFound},
  };
  for (const auto& c : cases) {
    INFO(c.target);
    auto r = parse_target(c.target);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == make_error_code(c.error));
  }
}

TEST_CASE("the demand feed body round-trips and drops bad entries", "[unit][swarm_protocol]") {
  Demand d;
  d.next = 7;
  d.blobs = {blob("docker.io", "library/busybox"), blob("", "team/chunks")};
  auto parsed = parse_demand(demand_body(d));
  REQUIRE(parsed);
  CHECK(parsed->next == 7);
  REQUIRE(parsed->blobs.size() == 2);
  CHECK(parsed->blobs[1].repository == "team/chunks");
  CHECK(parsed->blobs[1].registry.empty());
  auto mixed = parse_demand(R"({"next": 3, "blobs": [{"digest": "sha256:zz", "repo": "a"},
      {"digest": ")" + kDigest +
                            R"(", "repo": "Bad"}, 5,
      {"digest": ")" + kDigest +
                            R"(", "repo": "ok", "ns": "docker.io"}]})");
  REQUIRE(mixed);
  REQUIRE(mixed->blobs.size() == 1);
  CHECK(mixed->blobs[0].repository == "ok");
  CHECK_FALSE(parse_demand("[]"));
  CHECK_FALSE(parse_demand(R"({"next": -1, "blobs": []})"));
  CHECK_FALSE(parse_demand("not json"));
}
