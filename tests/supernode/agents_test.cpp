// The agent registry's registration parser and listing (supernode/agents.h).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "supernode/agents.h"

using namespace layerswarm::supernode;

namespace {
const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
}  // namespace

TEST_CASE("a registration with health and traffic fields", "[supernode][agents]") {
  auto r = parse_registration(
      "id=node-1%3A65001&port=65001&zone=rack-1&version=0.1.0&cache_bytes=10&cache_capacity=100"
      "&downloads=2&from_cache=3&from_swarm=4&from_supernode=5&from_upstream=6&errors=7"
      "&digest_mismatches=8&upstreams_offline=1&writable=0&later_field=ignored",
      "10.0.0.7", kNow);
  REQUIRE(r);
  CHECK(r->id == "node-1:65001");
  CHECK(r->address == "10.0.0.7:65001");
  CHECK(r->from_cache == 3);
  CHECK(r->from_swarm == 4);
  CHECK(r->from_supernode == 5);
  CHECK(r->from_upstream == 6);
  CHECK(r->errors == 7);
  CHECK(r->digest_mismatches == 8);
  CHECK(r->upstreams_offline == 1);
  CHECK_FALSE(r->writable);

  AgentRegistry registry;
  REQUIRE(registry.note(*r));
  const auto j = nlohmann::json::parse(registry.to_json(kNow));
  REQUIRE(j.size() == 1);
  CHECK(j[0]["from_swarm"] == 4);
  CHECK(j[0]["writable"] == false);
  CHECK(j[0]["upstreams_offline"] == 1);
}

TEST_CASE("an older agent's registration: health fields default to healthy",
          "[supernode][agents]") {
  auto r = parse_registration("id=a&port=1", "::1", kNow);
  REQUIRE(r);
  CHECK(r->address == "[::1]:1");
  CHECK(r->writable);
  CHECK(r->errors == 0);
}

TEST_CASE("bad registrations name the field", "[supernode][agents]") {
  const auto error = [](std::string_view q) {
    auto r = parse_registration(q, "10.0.0.1", kNow);
    return r ? std::string() : r.error().what();
  };
  CHECK(error("id=a&port=1&writable=yes").find("writable") != std::string::npos);
  CHECK(error("id=a&port=1&from_swarm=-1").find("from_swarm") != std::string::npos);
  CHECK(error("id=a&port=1&errors=1x").find("errors") != std::string::npos);
  CHECK(error("port=1").find("no id") != std::string::npos);
  CHECK(error("id=a&port=70000").find("port") != std::string::npos);
}
