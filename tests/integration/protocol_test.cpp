// The mirror API as PROTOCOL.md states it: responses, headers, ranges and errors.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/fixtures.h"

using namespace layerswarm::test;

namespace {

std::string error_code_of(const HttpResult& r) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("errors") || j["errors"].empty()) return "(not OCI JSON)";
  return j["errors"][0]["code"];
}

}  // namespace

TEST_CASE("ping, errors and grammar", "[integration][protocol]") {
  TempDir dir;
  Registry upstream(dir);
  Agent agent(dir, {"--upstream", upstream.url()});
  const std::string a = agent.address();
  const std::string d = "sha256:" + std::string(64, 'c');

  const auto ping = http_get(a, "/v2/");
  CHECK(ping.status == 200);
  CHECK(ping.body == "{}");
  CHECK(ping.header("content-type") == "application/json");
  CHECK(ping.header("docker-distribution-api-version") == "registry/2.0");

  struct Case {
    std::string method, target;
    int status;
    std::string code;
  };
  const Case cases[] = {
      {"GET", "/v2/UPPER/case/manifests/v1", 400, "NAME_INVALID"},
      {"GET", "/v2/a/blobs/sha256:123", 400, "DIGEST_INVALID"},
      {"GET", "/v2/a/manifests/sha256:totallywrong", 400, "DIGEST_INVALID"},
      {"GET", "/v2/a/manifests/.INVALID_MANIFEST_NAME", 404, "MANIFEST_UNKNOWN"},
      {"GET", "/v2/nope/manifests/v1", 404, "MANIFEST_UNKNOWN"},
      {"GET", "/v2/nope/blobs/" + d, 404, "BLOB_UNKNOWN"},
      {"GET", "/v2/nope/manifests/" + d, 404, "MANIFEST_UNKNOWN"},
      {"PUT", "/v2/a/manifests/v1", 405, "UNSUPPORTED"},
      {"DELETE", "/v2/a/blobs/" + d, 405, "UNSUPPORTED"},
      {"POST", "/v2/a/blobs/uploads/", 405, "UNSUPPORTED"},
      {"PATCH", "/v2/a/blobs/uploads/1234", 405, "UNSUPPORTED"},
      {"GET", "/v2/_catalog", 405, "UNSUPPORTED"},
      {"GET", "/v2/a/manifests/v1?ns=bad%zz", 400, "NAME_INVALID"},
      // Port 0 once passed the grammar and crashed the registry lookup (fuzz_config).
      {"GET", "/v2/a/manifests/v1?ns=example.com:0", 400, "NAME_INVALID"},
      {"GET", "/v2/example.com:000/a/blobs/" + d, 400, "NAME_INVALID"},
  };
  for (const auto& c : cases) {
    INFO(c.method << " " << c.target);
    const auto r = http_request(a, c.method, c.target, {}, c.method == "PUT" ? "{}" : "");
    CHECK(r.status == c.status);
    CHECK(error_code_of(r) == c.code);
    CHECK(r.header("content-type") == "application/json");
    if (c.status == 405) CHECK(r.header("allow") == "GET, HEAD");
  }
  // A push with a body gets its 405 whole: the agent drops the unread body before closing
  // instead of resetting the connection under the answer.
  const std::string layer(1 << 20, 'x');
  for (const char* target : {"/v2/a/blobs/uploads/", "/v2/a/manifests/v1"}) {
    INFO(target);
    const auto push =
        http_request(a, std::string(target).find("uploads") != std::string::npos ? "POST" : "PUT",
                     target, {{"Content-Type", "application/octet-stream"}}, layer);
    CHECK(push.status == 405);
    CHECK(push.complete);
    CHECK(error_code_of(push) == "UNSUPPORTED");
  }
  // HEAD errors carry the status and no body.
  const auto head = http_request(a, "HEAD", "/v2/nope/blobs/" + d);
  CHECK(head.status == 404);
  CHECK(head.body.empty());
  // Nothing from a request became a path: no stray files in the data dir.
  CHECK(http_get(a, "/v2/a/blobs/sha256:..%2f..%2fetc%2fpasswd").status == 400);
}

TEST_CASE("blob responses and the conformance ranges, cold and warm", "[integration][protocol]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(3000, 4);
  const std::string digest = push_blob(upstream, "range/blob", bytes);
  const std::string other = push_blob(upstream, "range/blob", random_bytes(5000, 5));
  Agent agent(dir, {"--upstream", upstream.url()});
  const std::string target = "/v2/range/blob/blobs/" + digest;

  // A HEAD on a cold blob asks the upstream for the size, and fetches nothing.
  const auto head = http_request(agent.address(), "HEAD", "/v2/range/blob/blobs/" + other);
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == "5000");
  CHECK(head.header("docker-content-digest") == other);
  CHECK(upstream.requests("GET", "/v2/range/blob/blobs/" + other) == 0);

  // The first (cold) request is a range: served while fetching the whole blob.
  const auto cold = http_get(agent.address(), target, {{"Range", "bytes=500-1499"}});
  CHECK(cold.status == 206);
  CHECK(cold.header("content-range") == "bytes 500-1499/3000");
  CHECK(cold.body == bytes.substr(500, 1000));
  CHECK(cold.complete);

  struct Case {
    std::string range;
    int status;
    std::string content_range;
    std::string body;
  };
  const Case cases[] = {
      {"bytes=500-1499", 206, "bytes 500-1499/3000", bytes.substr(500, 1000)},
      {"bytes=500-", 206, "bytes 500-2999/3000", bytes.substr(500)},
      {"bytes=-500", 206, "bytes 2500-2999/3000", bytes.substr(2500)},
      {"bytes=2000-5000", 206, "bytes 2000-2999/3000", bytes.substr(2000)},
      {"bytes=500-0", 416, "bytes */3000", ""},
      {"bytes=5000-10000", 416, "bytes */3000", ""},
  };
  for (const auto& c : cases) {
    INFO(c.range);
    const auto r = http_get(agent.address(), target, {{"Range", c.range}});
    CHECK(r.status == c.status);
    CHECK(r.header("content-range") == c.content_range);
    if (c.status == 206) CHECK(r.body == c.body);
    if (c.status == 416) CHECK(error_code_of(r) == "RANGE_INVALID");
  }
  // A plain GET: 200, whole body, the headers clients need, never compressed.
  const auto whole = http_get(agent.address(), target, {{"Accept-Encoding", "gzip, zstd"}});
  CHECK(whole.status == 200);
  CHECK(whole.body == bytes);
  CHECK(whole.header("content-length") == "3000");
  CHECK(whole.header("content-type") == "application/octet-stream");
  CHECK(whole.header("docker-content-digest") == digest);
  CHECK(whole.header("accept-ranges") == "bytes");
  CHECK(whole.header("content-encoding").empty());
  CHECK(whole.header("content-range").empty());
  CHECK(eventually([&] { return upstream.requests("GET", target); }, 1) == 1);
}
