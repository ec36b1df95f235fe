#include <catch2/catch.hpp>

#include "common/reference.h"

using namespace layerswarm;

TEST_CASE("repository names follow the distribution grammar", "[unit][reference]") {
  for (const char* ok :
       {"a", "library/busybox", "a0/b-c/d__e", "foo.bar/baz_qux", "x--y", "a/b/c/d/e/f", "0"}) {
    INFO(ok);
    CHECK(is_valid_name(ok));
  }
  for (const char* bad : {"", "A", "Library/busybox", "a//b", "/a", "a/", "-a", "a-", "a..b",
                          "a___b", "a._b", "a b", "a:b", "a/../b", ".a", "a%2fb"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_name(bad));
  }
  CHECK(is_valid_name(std::string(255, 'a')));
  CHECK_FALSE(is_valid_name(std::string(256, 'a')));
}

TEST_CASE("tags follow the distribution grammar", "[unit][reference]") {
  for (const char* ok : {"latest", "v1.2.3", "_x", "A-b_c.d", "1"}) CHECK(is_valid_tag(ok));
  for (const char* bad : {"", ".INVALID_MANIFEST_NAME", "-x", "a/b", "a:b", "a b"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_tag(bad));
  }
  CHECK(is_valid_tag(std::string(128, 'a')));
  CHECK_FALSE(is_valid_tag(std::string(129, 'a')));
}

TEST_CASE("registry hosts", "[unit][reference]") {
  for (const char* ok : {"docker.io", "ghcr.io", "my.reg:5000", "localhost", "127.0.0.1:5000",
                         "[::1]:5000", "[fe80::1]"}) {
    INFO(ok);
    CHECK(is_valid_registry_host(ok));
  }
  for (const char* bad : {"", "a b", "reg:", "reg:99999", "reg:0", "reg:000", "[::1]:0", "reg:x",
                          ".reg", "reg.", "a..b", "[::1", "UPPER.io", "a/b"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_registry_host(bad));
  }
  CHECK(canonical_registry("Index.Docker.IO") == "docker.io");
  CHECK(canonical_registry("registry-1.docker.io") == "docker.io");
  CHECK(canonical_name("docker.io", "busybox") == "library/busybox");
  CHECK(canonical_name("docker.io", "me/app") == "me/app");
  CHECK(canonical_name("ghcr.io", "app") == "app");
}

TEST_CASE("parse_route: routing and upstream selection", "[unit][reference]") {
  const std::string d = "sha256:" + std::string(64, 'b');
  SECTION("ping") {
    CHECK(parse_route("GET", "/v2/")->kind == Route::Kind::kPing);
    CHECK(parse_route("HEAD", "/v2")->kind == Route::Kind::kPing);
  }
  SECTION("manifest by tag, default upstream") {
    auto r = parse_route("GET", "/v2/library/busybox/manifests/latest");
    REQUIRE(r);
    CHECK(r->kind == Route::Kind::kManifest);
    CHECK(r->name == "library/busybox");
    CHECK(r->tag == "latest");
    CHECK_FALSE(r->digest);
    CHECK(r->registry.empty());
  }
  SECTION("manifest by digest with containerd's ns") {
    auto r = parse_route("HEAD", "/v2/org/app/manifests/" + d + "?ns=my.reg%3A5000");
    REQUIRE(r);
    CHECK(r->digest->str() == d);
    CHECK(r->registry == "my.reg:5000");
  }
  SECTION("a dotted first component names the upstream") {
    auto r = parse_route("GET", "/v2/ghcr.io/org/app/blobs/" + d);
    REQUIRE(r);
    CHECK(r->kind == Route::Kind::kBlob);
    CHECK(r->registry == "ghcr.io");
    CHECK(r->name == "org/app");
    auto local = parse_route("GET", "/v2/localhost:5000/app/manifests/v1");
    REQUIRE(local);
    CHECK(local->registry == "localhost:5000");
  }
  SECTION("ns wins over a dotted path component") {
    auto r = parse_route("GET", "/v2/ghcr.io/app/manifests/v1?ns=docker.io");
    REQUIRE(r);
    CHECK(r->registry == "docker.io");
    CHECK(r->name == "ghcr.io/app");
  }
  SECTION("names containing the words manifests and blobs split on the last one") {
    auto r = parse_route("GET", "/v2/a/manifests/b/manifests/v1");
    REQUIRE(r);
    CHECK(r->name == "a/manifests/b");
    CHECK(r->tag == "v1");
    auto b = parse_route("GET", "/v2/x/blobs/y/blobs/" + d);
    REQUIRE(b);
    CHECK(b->name == "x/blobs/y");
  }
  SECTION("a lone dotted component is a repository name, not a registry") {
    auto r = parse_route("GET", "/v2/ghcr.io/manifests/v1");
    REQUIRE(r);
    CHECK(r->registry.empty());
    CHECK(r->name == "ghcr.io");
  }
  SECTION("tags list keeps its query") {
    auto r = parse_route("GET", "/v2/a/b/tags/list?n=10&last=x");
    REQUIRE(r);
    CHECK(r->kind == Route::Kind::kTagsList);
    CHECK(r->name == "a/b");
    CHECK(r->query == "n=10&last=x");
  }
}

TEST_CASE("parse_route: errors", "[unit][reference]") {
  const std::string d = "sha256:" + std::string(64, 'b');
  struct Case {
    const char* method;
    std::string target;
    Errc errc;
  };
  const Case cases[] = {
      {"GET", "/v2/UPPER/manifests/v1", Errc::kNameInvalid},
      {"GET", "/v2/a//b/manifests/v1", Errc::kNameInvalid},
      {"GET", "/v2/a/blobs/sha256:abc", Errc::kDigestInvalid},
      {"GET", "/v2/a/manifests/sha256:totallywrong", Errc::kDigestInvalid},
      {"GET", "/v2/a/manifests/.INVALID_MANIFEST_NAME", Errc::kManifestUnknown},
      {"PUT", "/v2/a/manifests/v1", Errc::kUnsupported},
      {"DELETE", "/v2/a/manifests/" + d, Errc::kUnsupported},
      {"DELETE", "/v2/a/blobs/" + d, Errc::kUnsupported},
      {"POST", "/v2/a/blobs/uploads/", Errc::kUnsupported},
      {"PATCH", "/v2/a/blobs/uploads/123", Errc::kUnsupported},
      {"GET", "/v2/a/blobs/uploads/123", Errc::kUnsupported},
      {"GET", "/v2/_catalog", Errc::kUnsupported},
      {"POST", "/v2/", Errc::kMethodNotAllowed},
      {"OPTIONS", "/v2/a/manifests/v1", Errc::kMethodNotAllowed},
      {"GET", "/", Errc::kNotFound},
      {"GET", "/v1/_ping", Errc::kNotFound},
      {"GET", "/v2/a/b", Errc::kNotFound},
      {"GET", "/v2/a/manifests/v1?ns=bad%2", Errc::kNameInvalid},
      {"GET", "/v2/a/manifests/v1?ns=a/b", Errc::kNameInvalid},
      {"GET", "/v2/Bad.Host/a/manifests/v1", Errc::kNameInvalid},
  };
  for (const auto& c : cases) {
    INFO(c.method << " " << c.target);
    auto r = parse_route(c.method, c.target);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == make_error_code(c.errc));
  }
}

TEST_CASE("percent_decode", "[unit][reference]") {
  CHECK(*percent_decode("my.reg%3A5000") == "my.reg:5000");
  CHECK(*percent_decode("a+b") == "a b");
  CHECK_FALSE(percent_decode("%"));
  CHECK_FALSE(percent_decode("%4"));
  CHECK_FALSE(percent_decode("%zz"));
}

TEST_CASE("image references as people write them", "[unit][reference]") {
  auto a = parse_image_reference("alpine");
  REQUIRE(a);
  CHECK(a->registry.empty());
  CHECK(a->name == "alpine");
  CHECK(a->tag == "latest");
  auto b = parse_image_reference("registry.corp:5000/team/app:v2");
  REQUIRE(b);
  CHECK(b->registry == "registry.corp:5000");
  CHECK(b->name == "team/app");
  CHECK(b->tag == "v2");
  const std::string d = "sha256:" + std::string(64, 'a');
  auto c = parse_image_reference("ghcr.io/org/app:v1@" + d);
  REQUIRE(c);
  CHECK(c->registry == "ghcr.io");
  CHECK(c->digest->str() == d);
  CHECK(c->str() == "ghcr.io/org/app@" + d);
  auto e = parse_image_reference("localhost/app");
  REQUIRE(e);
  CHECK(e->registry == "localhost");
  CHECK(parse_image_reference("library/busybox:1.36")->registry.empty());
  for (const char* bad : {"", "UPPER/app", "app:bad tag", "app@sha256:12", "a//b", ":v1"}) {
    INFO(bad);
    CHECK_FALSE(parse_image_reference(bad));
  }
}
