// Upstream authentication against docker-registry's htpasswd and token (Docker Hub style) auth.
#include <catch2/catch.hpp>

#include "tests/support/fixtures.h"

using namespace layerswarm::test;

TEST_CASE("Basic auth (htpasswd) upstream", "[integration][auth]") {
  TempDir dir;
  RegistryAuth auth;
  auth.kind = RegistryAuth::Kind::kHtpasswd;
  Registry upstream(dir, auth);
  const Image image = make_image(dir, "basic", {"--layer", "200K"});
  push_image(dir, image, upstream, "private/app:v1");

  Agent good(dir, {},
             registries_config(upstream, R"(, "username": "tester", "password": "s3cret-pass")"),
             "good");
  REQUIRE(pull_to_dir(dir, good.address(), "private/app:v1", "pulled") == 0);
  REQUIRE(pull_to_dir(dir, upstream.address(), "private/app:v1", "direct",
                      {"--src-creds", "tester:s3cret-pass"}) == 0);
  CHECK(same_tree(dir.file("direct"), dir.file("pulled")));
  CHECK(good.log().find("s3cret-pass") == std::string::npos);  // never logged

  Agent bad(dir, {}, registries_config(upstream, R"(, "username": "tester", "password": "wrong")"),
            "bad");
  const auto r = http_get(bad.address(), "/v2/private/app/manifests/v1");
  CHECK(r.status == 403);
  CHECK(r.body.find("DENIED") != std::string::npos);
}

TEST_CASE("token auth upstream: one token per scope, reused", "[integration][auth]") {
  TempDir dir;
  TokenServer tokens(dir, "tester", "s3cret-pass");
  RegistryAuth auth;
  auth.kind = RegistryAuth::Kind::kToken;
  auth.token_server = &tokens;
  Registry upstream(dir, auth);
  const Image image = make_image(dir, "tok", {"--layer", "150K", "--layer", "20K"});
  push_image(dir, image, upstream, "private/tok:v1");

  // Credentials from a docker config.json.
  write_file(dir.file("docker-config.json"), R"({"auths": {")" + upstream.address() +
                                                 R"(": {"auth": "dGVzdGVyOnMzY3JldC1wYXNz"}}})");
  Agent agent(dir, {},
              registries_config(upstream,
                                R"(, "docker_config": ")" + dir.file("docker-config.json") + "\""));
  const int before = tokens.token_requests();
  REQUIRE(pull_to_dir(dir, agent.address(), "private/tok:v1", "pulled") == 0);
  REQUIRE(pull_to_dir(dir, agent.address(), "private/tok:v1", "pulled-again") == 0);
  CHECK(same_tree(dir.file("pulled"), dir.file("pulled-again")));
  // Manifest HEAD/GET and three blobs share one cached token for repository:private/tok:pull.
  CHECK(eventually([&] { return tokens.token_requests() - before; }, 1) == 1);

  Agent anonymous(dir, {"--upstream", upstream.url()}, "", "anonymous");
  const auto r = http_get(anonymous.address(), "/v2/private/tok/manifests/v1");
  CHECK(r.status == 403);
  CHECK(r.body.find("DENIED") != std::string::npos);
}
