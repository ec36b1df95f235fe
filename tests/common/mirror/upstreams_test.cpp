#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include "common/mirror/upstreams.h"
#include "tests/support/temp_dir.h"

using namespace layerswarm;
using namespace layerswarm::mirror;
using layerswarm::test::FakeClock;

TEST_CASE("upstream selection and the bound on unlisted registries", "[unit][upstreams]") {
  asio::io_context ioc;
  FakeClock clock;
  MirrorOptions options;
  options.upstream = "http://127.0.0.1:5000";
  REQUIRE(apply_registry_flags({"ghcr.io=https://ghcr.example"}, options));
  REQUIRE(validate_mirror_options(options));
  Upstreams upstreams(ioc.get_executor(), options, clock);

  SECTION("names resolve to canonical registries and their URLs") {
    CHECK(upstreams.default_registry() == "127.0.0.1:5000");
    CHECK(upstreams.resolve("")->registry == "127.0.0.1:5000");
    CHECK(upstreams.resolve("index.docker.io")->registry == "docker.io");
    CHECK(upstreams.resolve("docker.io")->client->entry().url.host == "registry-1.docker.io");
    CHECK(upstreams.resolve("ghcr.io")->client->entry().url.host == "ghcr.example");
    CHECK(upstreams.resolve("quay.io")->client->entry().url.str() == "https://quay.io/");
    // One client per registry, reused.
    CHECK(upstreams.resolve("ghcr.io")->client == upstreams.resolve("ghcr.io")->client);
  }

  SECTION("unlisted registries are bounded; listed ones and clients in use survive") {
    auto held = upstreams.resolve("first.example")->client;
    auto ghcr = upstreams.resolve("ghcr.io")->client;
    for (int i = 0; i < 200; ++i) {
      REQUIRE(upstreams.resolve("r" + std::to_string(i) + ".example"));
    }
    // default + ghcr.io listed, at most kMaxUnlisted others.
    CHECK(upstreams.clients() <= Upstreams::kMaxUnlisted + 2);
    CHECK(upstreams.resolve("ghcr.io")->client == ghcr);  // never evicted
    CHECK(held->entry().name == "first.example");         // evicted, still usable by its holder
    CHECK(upstreams.resolve("first.example")->client != held);
  }
}
