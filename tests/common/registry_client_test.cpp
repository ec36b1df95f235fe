#include <catch2/catch.hpp>

#include "common/registry_client.h"
#include "common/token.h"

using namespace layerswarm;
using namespace std::chrono_literals;

TEST_CASE("token responses", "[unit][auth]") {
  const TimePoint now = from_unix_ms(1'700'000'000'000);
  SECTION("expires_in defaults to 60 s") {
    auto t = parse_token_response(R"({"token":"abc"})", now);
    REQUIRE(t);
    CHECK(t->value == "abc");
    CHECK(t->expires == now + 60s);
  }
  SECTION("access_token, short lifetimes are clamped to 60 s") {
    auto t = parse_token_response(R"({"access_token":"x","expires_in":10})", now);
    REQUIRE(t);
    CHECK(t->value == "x");
    CHECK(t->expires == now + 60s);
  }
  SECTION("issued_at counts when plausible") {
    // 2023-11-14T22:13:10Z is 10 s before `now`.
    auto t = parse_token_response(
        R"({"token":"x","expires_in":300,"issued_at":"2023-11-14T22:13:10Z"})", now);
    REQUIRE(t);
    CHECK(t->expires == now - 10s + 300s);
  }
  SECTION("issued_at in the future or too old is ignored") {
    auto future = parse_token_response(
        R"({"token":"x","expires_in":300,"issued_at":"2030-01-01T00:00:00Z"})", now);
    CHECK(future->expires == now + 300s);
    auto old = parse_token_response(
        R"({"token":"x","expires_in":300,"issued_at":"2001-01-01T00:00:00.123+02:00"})", now);
    CHECK(old->expires == now + 300s);
  }
  SECTION("absurd values are bounded (found by fuzz_token)") {
    auto far = parse_token_response(
        R"({"token":"x","expires_in":300,"issued_at":"4046-11-14T22:13:10.5+01:00"})", now);
    REQUIRE(far);
    CHECK(far->expires == now + 300s);
    auto huge = parse_token_response(R"({"token":"x","expires_in":9223372036854775807})", now);
    REQUIRE(huge);
    CHECK(huge->expires == now + 24h);
    auto negative = parse_token_response(R"({"token":"x","expires_in":-5})", now);
    CHECK(negative->expires == now + 60s);
  }
  SECTION("malformed") {
    for (const char* bad : {"", "[]", "{}", R"({"token":""})", R"({"token":5})", "not json"}) {
      INFO(bad);
      CHECK_FALSE(parse_token_response(bad, now));
    }
  }
}

TEST_CASE("credentials go only to the registry's own domain", "[unit][auth]") {
  const Url hub = *Url::parse("https://registry-1.docker.io");
  CHECK(realm_may_get_credentials(*Url::parse("https://auth.docker.io/token"), hub));
  CHECK_FALSE(realm_may_get_credentials(*Url::parse("https://evil.example/token"), hub));
  CHECK_FALSE(realm_may_get_credentials(*Url::parse("http://auth.docker.io/token"), hub));
  const Url local = *Url::parse("http://127.0.0.1:5000");
  CHECK(realm_may_get_credentials(*Url::parse("http://127.0.0.1:6000/token"), local));
  CHECK_FALSE(realm_may_get_credentials(*Url::parse("http://127.0.0.2/token"), local));
  const Url bare = *Url::parse("https://localhost:5000");
  CHECK_FALSE(realm_may_get_credentials(*Url::parse("https://other/token"), bare));
}

TEST_CASE("upstream statuses map to mirror errors", "[unit][error]") {
  CHECK(upstream_status_error(404, Errc::kBlobUnknown).code == make_error_code(Errc::kBlobUnknown));
  CHECK(upstream_status_error(401, Errc::kBlobUnknown).code ==
        make_error_code(Errc::kUnauthorized));
  CHECK(upstream_status_error(403, Errc::kBlobUnknown).code == make_error_code(Errc::kDenied));
  CHECK(upstream_status_error(429, Errc::kBlobUnknown).code ==
        make_error_code(Errc::kTooManyRequests));
  CHECK(upstream_status_error(503, Errc::kBlobUnknown).code ==
        make_error_code(Errc::kUpstreamUnavailable));
  CHECK(upstream_status_error(418, Errc::kBlobUnknown).code ==
        make_error_code(Errc::kBadUpstreamResponse));
}
