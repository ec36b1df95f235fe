// The agent's upstream client against real registries behind controllable fronts: TLS with a
// custom CA, anonymous tokens, a refused token fetched again, retries on 503 and 429, stale tags
// on a failing upstream, redirects that must not carry credentials, rate-limit headers, a
// stalled transfer, and sha512 content.
#include <catch2/catch.hpp>
#include <thread>

#include "tests/support/fixtures.h"
#include "tests/support/slow_proxy.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;

namespace {

// A config naming `url` the default upstream, with more keys for its registries entry.
std::string upstream_config(const std::string& name, const std::string& url,
                            const std::string& entry = "", const std::string& extra = "") {
  return R"({"upstream": ")" + name + R"(", "registries": {")" + name + R"(": {"url": ")" + url +
         "\"" + entry + "}}" + extra + "}";
}

}  // namespace

TEST_CASE("https upstream: a custom CA is trusted, an unknown one is refused",
          "[integration][upstream][tls]") {
  TempDir dir;
  const auto [cert, key] = make_certificate(dir, "registry");
  RegistryAuth tls;
  tls.tls_cert = cert;
  tls.tls_key = key;
  Registry upstream(dir, tls);
  const Image image = make_image(dir, "img", {"--layer", "300K"});
  push_image(dir, image, upstream, "secure/app:v1");
  const std::string name = upstream.address();

  Agent trusted(dir, {}, upstream_config(name, upstream.url(), R"(, "ca_file": ")" + cert + "\""),
                "trusted");
  REQUIRE(pull_to_dir(dir, trusted.address(), "secure/app:v1", "via-agent") == 0);
  REQUIRE(pull_to_dir(dir, upstream.address(), "secure/app:v1", "direct") == 0);
  CHECK(same_tree(dir.file("direct"), dir.file("via-agent")));

  Agent untrusted(dir, {}, upstream_config(name, upstream.url()), "untrusted");
  const auto refused = http_get(untrusted.address(), "/v2/secure/app/manifests/v1");
  CHECK(refused.status == 503);
  CHECK(eventually([&] { return untrusted.log_lines({"certificate verify failed"}); }, 1) >= 1);

  Agent insecure(dir, {},
                 upstream_config(name, upstream.url(), R"(, "insecure_skip_verify": true)"),
                 "insecure");
  CHECK(http_get(insecure.address(), "/v2/secure/app/manifests/v1").status == 200);
}

TEST_CASE("token auth: anonymous pulls get a token without credentials",
          "[integration][upstream][auth]") {
  TempDir dir;
  TokenServer tokens(dir, "tester", "s3cret-pass", {"--anonymous"});
  RegistryAuth auth;
  auth.kind = RegistryAuth::Kind::kToken;
  auth.token_server = &tokens;
  Registry upstream(dir, auth);
  const Image image = make_image(dir, "img", {"--layer", "100K"});
  push_image(dir, image, upstream, "public/app:v1");
  Agent agent(dir, {"--upstream", upstream.url()});  // no credentials configured
  const int before = tokens.token_requests();
  REQUIRE(pull_to_dir(dir, agent.address(), "public/app:v1", "pulled") == 0);
  CHECK(eventually([&] { return tokens.token_requests() - before; }, 1) ==
        1);  // one anonymous token, reused
  CHECK(tokens.log().find("token issued scope=['repository:public/app:pull']") !=
        std::string::npos);
}

TEST_CASE("a token the registry refuses (401) is dropped and fetched once more",
          "[integration][upstream][auth]") {
  TempDir dir;
  TokenServer tokens(dir, "tester", "s3cret-pass", {"--anonymous", "--expired-first", "1"});
  RegistryAuth auth;
  auth.kind = RegistryAuth::Kind::kToken;
  auth.token_server = &tokens;
  Registry upstream(dir, auth);
  // The first token issued is already expired: the registry refuses it.
  const std::string digest = "sha256:" + std::string(64, '0');
  Agent agent(dir, {"--upstream", upstream.url()});
  const auto r = http_get(agent.address(), "/v2/public/none/blobs/" + digest);
  CHECK(r.status == 404);  // reached the registry with a valid token: the blob is unknown
  CHECK(eventually([&] { return tokens.token_requests(); }, 2) ==
        2);  // the expired one, then one more
  // Without a token, with the refused one, with the new one.
  CHECK(eventually([&] { return upstream.requests("GET", "/v2/public/none/blobs/" + digest); },
                   3) == 3);
}

TEST_CASE("503 and 429 are retried within one client request", "[integration][upstream]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string digest = push_blob(upstream, "retry/blob", random_bytes(50'000, 9));
  UpstreamFront failing(dir, upstream, {"--fail-first", "2"}, "failing");
  Agent a1(dir, {"--upstream", failing.url()}, "", "a1");
  const auto r1 = http_get(a1.address(), "/v2/retry/blob/blobs/" + digest);
  CHECK(r1.status == 200);
  CHECK(r1.complete);
  CHECK(eventually([&] { return failing.lines({"front GET", "status=503"}); }, 2) == 2);
  CHECK(eventually([&] { return failing.lines({"front GET", "status=200"}); }, 1) == 1);

  UpstreamFront limited(dir, upstream, {"--throttle-first", "1"}, "limited");
  Agent a2(dir, {"--upstream", limited.url()}, "", "a2");
  CHECK(http_get(a2.address(), "/v2/retry/blob/blobs/" + digest).status == 200);
  CHECK(eventually([&] { return limited.lines({"status=429"}); }, 1) == 1);
}

TEST_CASE("an upstream answering 503: stale tags, fast errors", "[integration][upstream]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "30K"});
  push_image(dir, image, upstream, "flaky/app:v1");
  UpstreamFront flaky(dir, upstream, {"--fail-after", "1"});  // one good answer, then 503s
  Agent agent(dir, {"--upstream", flaky.url()},
              R"({"cache": {"tag_ttl": "0s"}, "upstream_client": {"retries": 2}})");
  const auto first = http_get(agent.address(), "/v2/flaky/app/manifests/v1");
  REQUIRE(first.status == 200);
  const auto stale = http_get(agent.address(), "/v2/flaky/app/manifests/v1");
  CHECK(stale.status == 200);
  CHECK(stale.header("docker-content-digest") == image.digest());
  CHECK(eventually([&] { return agent.log_lines({"manifests/v1", "source=stale"}); }, 1) == 1);
  const auto blob = http_get(agent.address(), "/v2/flaky/app/blobs/" + image.blob_digests()[0]);
  CHECK(blob.status == 503);
}

TEST_CASE("redirects are followed without credentials to another origin",
          "[integration][upstream][auth]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(200'000, 10);
  const std::string digest = push_blob(upstream, "cdn/blob", bytes);
  UpstreamFront front(dir, upstream, {"--basic", "tester:pw", "--redirect-blobs"});
  Agent agent(
      dir, {},
      upstream_config(front.address(), front.url(), R"(, "username": "tester", "password": "pw")"));
  const auto r = http_get(agent.address(), "/v2/cdn/blob/blobs/" + digest);
  CHECK(r.status == 200);
  CHECK(r.body == bytes);
  CHECK(eventually(
            [&] {
              return front.lines({"front GET /v2/cdn/blob/blobs/", "status=307", "auth=yes"});
            },
            1) == 1);
  CHECK(eventually(
            [&] {
              return front.lines({"cdn GET /v2/cdn/blob/blobs/", "status=200", "auth=no"});
            },
            1) == 1);
  CHECK(front.lines({"cdn GET", "auth=yes"}) == 0);
}

TEST_CASE("Docker Hub rate-limit headers are logged when the budget runs low",
          "[integration][upstream]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "10K"});
  push_image(dir, image, upstream, "rl/app:v1");
  UpstreamFront front(dir, upstream, {"--ratelimit", "3/100"});
  Agent agent(dir, {"--upstream", front.url()});
  CHECK(http_get(agent.address(), "/v2/rl/app/manifests/v1").status == 200);
  CHECK(eventually([&] { return agent.log_lines({"rate limit low: 3 of 100 pulls left"}); }, 1) >=
        1);
}

TEST_CASE("a stalled upstream transfer times out: the response is cut, nothing cached",
          "[integration][upstream]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string digest = push_blob(upstream, "stall/blob", random_bytes(2 << 20, 11));
  SlowProxy stalling(upstream.address(), 0, 1 << 20);  // 1 MiB, then silence
  Agent agent(dir, {"--upstream", "http://" + stalling.address()},
              R"({"upstream_client": {"read_timeout": "1s"}})");
  const auto r = http_get(agent.address(), "/v2/stall/blob/blobs/" + digest);
  CHECK(r.status == 200);  // headers went out before the stall
  CHECK_FALSE(r.complete);
  CHECK(r.body.size() < (2u << 20));
  CHECK(eventually([&] { return agent.log_lines({digest, "fetch failed", "timed out"}); }, 1) == 1);
  CHECK_FALSE(agent.blob_file_exists(digest));
}

TEST_CASE("sha512 blobs are verified and cached like sha256 ones", "[integration][upstream]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(100'000, 12);
  const std::string digest = push_blob(upstream, "sha/blob", bytes, /*sha512=*/true);
  REQUIRE(digest.rfind("sha512:", 0) == 0);
  Agent agent(dir, {"--upstream", upstream.url()});
  for (const char* pass : {"cold", "warm"}) {
    INFO(pass);
    const auto r = http_get(agent.address(), "/v2/sha/blob/blobs/" + digest);
    CHECK(r.status == 200);
    CHECK(r.body == bytes);
    CHECK(r.header("docker-content-digest") == digest);
  }
  CHECK(eventually([&] { return upstream.requests("GET", "/v2/sha/blob/blobs/" + digest); }, 1) ==
        1);
}

// upstream_client.blob_order (common/mirror/upstream_turns.h): with two downloads from one
// registry, the one with fewer bytes left reads and the other trickles; "shared" lets both read.
TEST_CASE("downloads from one registry take turns: the smaller one first",
          "[integration][upstream][turns]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string large = random_bytes(8 << 20, 31);
  const std::string small = random_bytes(4 << 20, 32);
  const std::string large_digest = push_blob(upstream, "turns/app", large);
  const std::string small_digest = push_blob(upstream, "turns/app", small);
  SlowProxy slow(upstream.address(), 1 << 20);  // per connection: 4 s for the small blob
  const bool shared = GENERATE(false, true);
  INFO("blob_order shared: " << shared);
  Agent agent(dir, {"--upstream", "http://" + slow.address()},
              shared ? R"({"upstream_client": {"blob_order": "shared"}})" : "");

  // The large blob's response, read for 3 s while the small one downloads.
  std::string early;
  std::thread reader([&] {
    early = raw_exchange(agent.address(),
                         "GET /v2/turns/app/blobs/" + large_digest +
                             " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         3s);
  });
  // The large blob's download is under way (the registry logs a request only when it ends).
  REQUIRE(wait_until([&] { return slow.bytes_forwarded() > 0; }, 20s));
  HttpResult first = http_get(agent.address(), "/v2/turns/app/blobs/" + small_digest);
  reader.join();
  CHECK(first.status == 200);
  CHECK(first.body == small);
  INFO("bytes of the large blob in its first 3 s: " << early.size());
  if (shared) {
    CHECK(early.size() > (1u << 20));  // both read at the proxy's rate
  } else {
    CHECK(early.size() < (1u << 20));  // a trickle: 16 KiB a second
  }
  // The large one still arrives whole, once.
  HttpResult second = http_get(agent.address(), "/v2/turns/app/blobs/" + large_digest);
  CHECK(second.status == 200);
  CHECK(second.body == large);
  CHECK(upstream.requests("GET", "/v2/turns/app/blobs/" + large_digest) == 1);
}
