#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>

#include "common/mirror/manifest_policy.h"
#include "tests/support/temp_dir.h"

using namespace layerswarm;
using namespace layerswarm::mirror;
using namespace std::chrono_literals;
using layerswarm::test::FakeClock;

namespace {
TagRecord tag_at(TimePoint t) { return TagRecord{Digest::sha256_of("m"), kOciManifest, 1, t}; }
}  // namespace

TEST_CASE("tags are served from cache while younger than tag_ttl", "[unit][tags]") {
  FakeClock clock;
  const auto rec = tag_at(clock.now());
  CHECK(decide_tag(std::nullopt, clock.now(), 30s) == TagDecision::kRevalidate);
  CHECK(decide_tag(rec, clock.now(), 30s) == TagDecision::kServeCached);
  clock.advance(29s);
  CHECK(decide_tag(rec, clock.now(), 30s) == TagDecision::kServeCached);
  clock.advance(1s);
  CHECK(decide_tag(rec, clock.now(), 30s) == TagDecision::kRevalidate);
  // tag_ttl 0: always ask the upstream.
  CHECK(decide_tag(tag_at(clock.now()), clock.now(), 0s) == TagDecision::kRevalidate);
  // A validation time in the future (the clock went back) is not trusted.
  CHECK(decide_tag(tag_at(clock.now() + 1h), clock.now(), 30s) == TagDecision::kRevalidate);
}

TEST_CASE("stale tags stand in only for an unavailable upstream, up to max_stale", "[unit][tags]") {
  FakeClock clock;
  const auto rec = tag_at(clock.now());
  const Error down(Errc::kUpstreamUnavailable);
  const Error timeout(Errc::kTimeout);
  const Error limited(Errc::kTooManyRequests);
  const Error refused(make_error_code(boost::asio::error::connection_refused));
  clock.advance(24h);
  for (const Error* e : {&down, &timeout, &limited, &refused}) {
    INFO(e->what());
    CHECK(may_serve_stale(rec, clock.now(), 7 * 24h, *e));
    CHECK_FALSE(may_serve_stale(rec, clock.now(), 1h, *e));
  }
  // The upstream answered: its answer stands.
  for (Errc e :
       {Errc::kManifestUnknown, Errc::kDenied, Errc::kUnauthorized, Errc::kDigestMismatch}) {
    CHECK_FALSE(may_serve_stale(rec, clock.now(), 7 * 24h, Error(e)));
  }
}

TEST_CASE("manifest media types", "[unit][manifest]") {
  const std::string oci =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})";
  CHECK(*manifest_media_type("application/vnd.oci.image.manifest.v1+json", oci) == kOciManifest);
  CHECK(*manifest_media_type("Application/Vnd.Docker.Distribution.Manifest.V2+json; charset=utf-8",
                             "{}") == kDockerManifest);
  CHECK(*manifest_media_type("application/json", oci) == kOciManifest);
  CHECK(*manifest_media_type("", R"({"schemaVersion":2,"manifests":[]})") == kOciIndex);
  CHECK(*manifest_media_type("text/plain", R"({"schemaVersion":2,"config":{},"layers":[]})") ==
        kOciManifest);
  CHECK(*manifest_media_type("", R"({"schemaVersion":1,"signatures":[]})") ==
        "application/vnd.docker.distribution.manifest.v1+prettyjws");
  for (const char* bad : {"", "<html>", "[]", R"({"schemaVersion":2})"}) {
    INFO(bad);
    auto r = manifest_media_type("application/json", bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == make_error_code(Errc::kManifestInvalid));
  }
}
