// The layerswarm-agent binary: command line, exit codes, SIGTERM draining, the TLS listener.
#include <catch2/catch.hpp>

#include <signal.h>

#include <thread>

#include "tests/support/fixtures.h"
#include "tests/support/slow_proxy.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;

TEST_CASE("command line: --version, --help, bad flags and bad config", "[integration][process]") {
  TempDir dir;
  CHECK(run_command({agent_binary(), "--version"}, dir.file("version.log")) == 0);
  CHECK(read_file(dir.file("version.log")).find("layerswarm-agent 0.1.0") != std::string::npos);
  CHECK(run_command({agent_binary(), "--help"}, dir.file("help.log")) == 0);
  CHECK(read_file(dir.file("help.log")).find("--registry") != std::string::npos);
  CHECK(run_command({agent_binary(), "--no-such-flag"}, dir.file("bad.log")) == 2);
  write_file(dir.file("bad.json"), R"({"cache": {"ttl": "forever"}})");
  CHECK(run_command({agent_binary(), "--config", dir.file("bad.json")}, dir.file("cfg.log")) == 2);
  CHECK(read_file(dir.file("cfg.log")).find("cache.ttl") != std::string::npos);
  CHECK(run_command({agent_binary(), "--registry", "nonsense"}, dir.file("reg.log")) == 2);
  // An address in use is a start-up failure, not a configuration error.
  Registry upstream(dir);
  CHECK(run_command({agent_binary(), "--listen", upstream.address(), "--data-dir", dir.file("d")},
                    dir.file("busy.log")) == 1);
}

TEST_CASE("SIGTERM lets a transfer in progress finish, then exits 0", "[integration][process]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(3 << 20, 6);
  const std::string digest = push_blob(upstream, "drain/blob", bytes);
  SlowProxy slow(upstream.address(), 2 << 20);
  Agent agent(dir, {"--upstream", "http://" + slow.address()});
  HttpResult result;
  std::thread client([&] { result = http_get(agent.address(), "/v2/drain/blob/blobs/" + digest); });
  REQUIRE(wait_until(
      [&] {
        return upstream.requests("GET", "/v2/drain/blob/blobs/" + digest) == 1 ||
               agent.log_lines({digest}) > 0;
      },
      20s));
  const auto status = agent.stop(30s);
  client.join();
  CHECK(status == 0);
  CHECK(result.status == 200);
  CHECK(result.complete);
  CHECK(result.body == bytes);
  CHECK(eventually([&] { return agent.log_lines({"draining"}); }, 1) == 1);
}

TEST_CASE("a second SIGTERM stops at once, without waiting for the drain",
          "[integration][process]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string digest = push_blob(upstream, "drain/blob", random_bytes(4 << 20, 8));
  SlowProxy slow(upstream.address(), 256 << 10);  // 16 s for the whole blob
  Agent agent(dir, {"--upstream", "http://" + slow.address()}, R"({"drain_timeout": "60s"})");
  HttpResult result;
  std::thread client([&] { result = http_get(agent.address(), "/v2/drain/blob/blobs/" + digest); });
  REQUIRE(wait_until(
      [&] { return upstream.requests("GET", "/v2/drain/blob/blobs/" + digest) == 1; }, 20s));
  ::kill(agent.process().pid(), SIGTERM);
  REQUIRE(wait_until([&] { return agent.log_lines({"draining"}) == 1; }, 10s));
  const auto status = agent.stop(10s);  // the second SIGTERM
  client.join();
  CHECK(status == 0);
  CHECK(eventually([&] { return agent.log_lines({"again: stopping now"}); }, 1) == 1);
  CHECK_FALSE(result.complete);  // cut off, not finished
}

TEST_CASE("the TLS listener serves the same API over https", "[integration][process][tls]") {
  TempDir dir;
  REQUIRE(run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                       dir.file("key.pem"), "-out", dir.file("cert.pem"), "-days", "2", "-subj",
                       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                      dir.file("openssl.log")) == 0);
  Registry upstream(dir);
  const std::string bytes = random_bytes(1 << 20, 7);
  const std::string digest = push_blob(upstream, "tls/blob", bytes);
  Agent agent(dir, {"--upstream", upstream.url()},
              R"({"tls": {"listen": "127.0.0.1:0", "cert": ")" + dir.file("cert.pem") +
                  R"(", "key": ")" + dir.file("key.pem") + R"("}})");
  REQUIRE_FALSE(agent.tls_address().empty());
  // Cold (streamed while fetching) and warm (from the cache file) over TLS.
  for (const char* name : {"cold", "warm"}) {
    INFO(name);
    const std::string out = dir.file(std::string(name) + ".bin");
    CHECK(run_command({"curl", "-sS", "--fail", "--cacert", dir.file("cert.pem"), "-o", out,
                       "https://" + agent.tls_address() + "/v2/tls/blob/blobs/" + digest},
                      dir.file("curl.log")) == 0);
    CHECK(read_file(out) == bytes);
  }
  CHECK(run_command({"curl", "-sS", "--fail", "--cacert", dir.file("cert.pem"),
                     "https://" + agent.tls_address() + "/v2/"},
                    dir.file("curl.log")) == 0);
}
