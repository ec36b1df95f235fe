// The cache's promises, against a real upstream: one upstream fetch however many clients ask,
// tags revalidated and served stale when the upstream is gone, nothing unverified ever
// served or cached, a restart keeps everything, unused objects expire.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/fixtures.h"
#include "tests/support/slow_proxy.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;

namespace {

struct Expect {
  std::string range;  // "" = whole blob
  int status;
  std::string body;
};

// Runs every request at once on its own thread; returns the results in order.
std::vector<HttpResult> concurrently(const std::string& address, const std::string& target,
                                     const std::vector<Expect>& requests) {
  std::vector<HttpResult> results(requests.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] {
      HeaderList headers;
      if (!requests[i].range.empty()) headers.push_back({"Range", requests[i].range});
      results[i] = http_get(address, target, headers);
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

void corrupt_middle(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) / 2));
  f.write("CORRUPTED!", 10);
}

}  // namespace

TEST_CASE("8 concurrent cold requests for one blob, ranges included, make one upstream GET",
          "[integration][cache]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(6 << 20, 1);
  const std::string digest = push_blob(upstream, "conc/blob", bytes);
  SlowProxy slow(upstream.address(), 6 << 20);  // about a second in flight
  Agent agent(dir, {"--upstream", "http://" + slow.address()});

  const std::vector<Expect> requests = {
      {"", 200, bytes},
      {"", 200, bytes},
      {"", 200, bytes},
      {"", 200, bytes},
      {"bytes=1000-", 206, bytes.substr(1000)},
      {"bytes=5000000-5000099", 206, bytes.substr(5000000, 100)},
      {"bytes=0-99", 206, bytes.substr(0, 100)},
      {"bytes=-4096", 206, bytes.substr(bytes.size() - 4096)},
  };
  const auto results = concurrently(agent.address(), "/v2/conc/blob/blobs/" + digest, requests);
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO("request " << i << " " << requests[i].range << " " << results[i].error);
    CHECK(results[i].status == requests[i].status);
    CHECK(results[i].complete);
    CHECK(results[i].body == requests[i].body);
  }
  CHECK(eventually([&] { return upstream.requests("GET", "/v2/conc/blob/blobs/" + digest); }, 1) ==
        1);
  CHECK(eventually(
            [&] {
              return agent.log_lines({"blobs/" + digest, "source=inflight"});
            },
            1) >= 1);  // joined the fetch
  CHECK(results[5].header("content-range") ==
        "bytes 5000000-5000099/" + std::to_string(bytes.size()));
  // Responses complete at the digest check; fsync and rename into the cache follow on the pool.
  CHECK(wait_until([&] { return agent.blob_file_exists(digest); }, 10s));
}

TEST_CASE("tags: revalidated with HEAD, changes followed, stale served when upstream is down",
          "[integration][cache]") {
  TempDir dir;
  Registry upstream(dir);
  const Image first = make_image(dir, "first", {"--layer", "20K"});
  const Image second = make_image(dir, "second", {"--layer", "20K"});
  push_image(dir, first, upstream, "test/tag:v1");
  // tag_ttl 0: every request revalidates, so the test needs no waiting.
  Agent agent(
      dir, {"--upstream", upstream.url()},
      R"({"cache": {"tag_ttl": "0s"}, "upstream_client": {"response_timeout": "3s", "retries": 1}})");
  const std::string target = "/v2/test/tag/manifests/v1";

  auto r1 = http_get(agent.address(), target);  // never seen: one GET by tag
  CHECK(r1.status == 200);
  CHECK(r1.header("docker-content-digest") == first.digest());
  CHECK(eventually([&] { return upstream.agent_requests("GET", target); }, 1) == 1);
  CHECK(upstream.agent_requests("HEAD", target) == 0);
  auto r2 = http_get(agent.address(), target);  // cached: a HEAD confirms the digest
  CHECK(r2.header("docker-content-digest") == first.digest());
  CHECK(eventually(
            [&] {
              return agent.log_lines({"manifests/v1", "source=revalidated"});
            },
            1) == 1);
  CHECK(eventually([&] { return upstream.agent_requests("HEAD", target); }, 1) == 1);
  CHECK(eventually([&] { return upstream.agent_requests("GET", target); }, 1) == 1);

  push_image(dir, second, upstream, "test/tag:v1");  // the tag moves
  auto r3 = http_get(agent.address(), target);
  CHECK(r3.header("docker-content-digest") == second.digest());
  CHECK(eventually([&] { return upstream.agent_requests("HEAD", target); }, 2) == 2);
  // The HEAD named a new digest: one GET by digest, none by tag.
  CHECK(eventually(
            [&] {
              return upstream.agent_requests("GET", "/v2/test/tag/manifests/" + second.digest());
            },
            1) == 1);
  CHECK(eventually([&] { return upstream.agent_requests("GET", target); }, 1) == 1);

  upstream.stop();
  auto stale = http_get(agent.address(), target);
  CHECK(stale.status == 200);
  CHECK(stale.header("docker-content-digest") == second.digest());
  CHECK(eventually([&] { return agent.log_lines({"manifests/v1", "source=stale"}); }, 1) == 1);
  // What was never cached fails fast with a status every client falls back on.
  auto missing = http_get(agent.address(), "/v2/test/tag/manifests/other");
  CHECK(missing.status == 503);
  auto blob = http_get(agent.address(), "/v2/test/tag/blobs/" + first.blob_digests().front());
  CHECK(blob.status == 503);
}

TEST_CASE("an upstream serving wrong bytes never yields a complete response, nothing is cached",
          "[integration][cache][verify]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(3 << 20, 2);
  const std::string digest = push_blob(upstream, "bad/blob", bytes);
  corrupt_middle(upstream.blob_data_path(digest));
  SlowProxy slow(upstream.address(), 4 << 20);
  Agent agent(dir, {"--upstream", "http://" + slow.address()});
  const std::string target = "/v2/bad/blob/blobs/" + digest;

  const auto results = concurrently(
      agent.address(), target, {{"", 200, ""}, {"bytes=100-", 206, ""}, {"bytes=0-9", 206, ""}});
  for (const auto& r : results) {
    INFO(r.status << " " << r.error);
    CHECK_FALSE(r.complete);
    if (r.status == 200) CHECK(r.body.size() < bytes.size());
    if (r.status == 206 &&
        r.header("content-range") == "bytes 0-9/" + std::to_string(bytes.size())) {
      CHECK(r.body.size() < 10);  // even a range far from the bad bytes waits for the check
    }
  }
  CHECK(eventually(
            [&] {
              return agent.log_lines({digest, "digest mismatch", "discarded"});
            },
            1) == 1);  // one fetch
  CHECK(eventually(
            [&] {
              return agent.log_lines({digest, "aborted: digest mismatch"});
            },
            3) == 3);  // three readers
  CHECK_FALSE(agent.blob_file_exists(digest));
  CHECK(wait_until([&] { return std::filesystem::is_empty(agent.data_dir() + "/tmp"); }, 10s));
  // Nothing was cached: the next request goes upstream again, and fails again.
  const auto again = http_get(agent.address(), target);
  CHECK_FALSE(again.complete);
  CHECK(eventually([&] { return upstream.requests("GET", target); }, 2) == 2);
}

TEST_CASE("a manifest whose bytes do not match its digest is refused, not cached",
          "[integration][cache][verify]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "10K"});
  push_image(dir, image, upstream, "bad/manifest:v1");
  // The manifest is a blob in the registry's storage: change one hex digit of its text.
  const std::string path = upstream.blob_data_path(image.digest());
  std::string text = read_file(path);
  const auto pos = text.find("sha256:") + 7;
  text[pos] = text[pos] == 'a' ? 'b' : 'a';
  write_file(path, text);
  Agent agent(dir, {"--upstream", upstream.url()});
  const std::string target = "/v2/bad/manifest/manifests/" + image.digest();
  const auto r = http_get(agent.address(), target);
  CHECK(r.status == 502);
  CHECK(r.body.find("UNAVAILABLE") != std::string::npos);
  CHECK(http_get(agent.address(), target).status == 502);
  CHECK(eventually([&] { return upstream.requests("GET", target); }, 2) == 2);  // not cached
  CHECK(eventually([&] { return agent.log_lines({"digest mismatch"}); }, 2) >= 2);
}

TEST_CASE("a restart keeps the cache, even with the upstream gone", "[integration][cache]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "keep", {"--layer", "300K", "--layer", "40K"});
  push_image(dir, image, upstream, "test/keep:v1");
  Agent agent(dir, {"--upstream", upstream.url()});
  REQUIRE(pull_to_dir(dir, agent.address(), "test/keep:v1", "before") == 0);
  CHECK(agent.stop() == 0);  // SIGTERM: a clean exit
  upstream.stop();
  agent.start();
  REQUIRE(pull_to_dir(dir, agent.address(), "test/keep:v1", "after") == 0);
  std::string why;
  CHECK(same_tree(dir.file("before"), dir.file("after"), &why));
  INFO(why);
  const auto m = http_get(agent.address(), "/v2/test/keep/manifests/" + image.digest());
  CHECK(m.status == 200);
  CHECK(sha256_hex(m.body) == image.digest().substr(7));
}

TEST_CASE("blobs and manifests unused for cache.ttl are removed", "[integration][cache][ttl]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string digest = push_blob(upstream, "ttl/blob", random_bytes(100'000, 3));
  Agent agent(dir, {"--upstream", upstream.url()},
              R"({"cache": {"ttl": "1s", "sweep_interval": "200ms"}})");
  const std::string target = "/v2/ttl/blob/blobs/" + digest;
  REQUIRE(http_get(agent.address(), target).status == 200);
  CHECK(wait_until([&] { return agent.log_lines({"cache sweep removed 1 blobs"}) > 0; }, 20s));
  CHECK_FALSE(agent.blob_file_exists(digest));
  REQUIRE(http_get(agent.address(), target).status == 200);
  CHECK(eventually([&] { return upstream.requests("GET", target); }, 2) == 2);
}
