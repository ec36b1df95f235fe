#include <catch2/catch.hpp>

#include "common/duration.h"
#include "common/encoding.h"
#include "common/size.h"
#include "common/url.h"

using namespace layerswarm;
using namespace std::chrono_literals;

TEST_CASE("durations", "[unit][duration]") {
  CHECK(*parse_duration("30s") == 30s);
  CHECK(*parse_duration("250ms") == 250ms);
  CHECK(*parse_duration("1h30m") == 90min);
  CHECK(*parse_duration("7d") == std::chrono::hours(168));
  CHECK(*parse_duration("45") == 45s);
  CHECK(*parse_duration("0s") == 0ms);
  for (const char* bad : {"", "s", "-5s", "5x", "1.5h", "5s3", "99999999999999999999d"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
  CHECK(format_duration(90s) == "1m30s");
  CHECK(format_duration(std::chrono::hours(168)) == "7d");
  CHECK(format_duration(0ms) == "0s");
}

TEST_CASE("URLs", "[unit][url]") {
  auto u = Url::parse("https://Registry-1.Docker.io/v2/?x=1");
  REQUIRE(u);
  CHECK(u->scheme == "https");
  CHECK(u->host == "registry-1.docker.io");
  CHECK(u->port == 443);
  CHECK(u->target == "/v2/?x=1");
  CHECK(u->authority() == "registry-1.docker.io");
  auto p = Url::parse("http://127.0.0.1:5000");
  REQUIRE(p);
  CHECK(p->port == 5000);
  CHECK(p->target == "/");
  CHECK(p->origin() == "http://127.0.0.1:5000");
  auto v6 = Url::parse("http://[::1]:8080/x");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->authority() == "[::1]:8080");
  for (const char* bad :
       {"ftp://x", "x", "http://", "http://u:p@host/", "http://h:0", "http://h:70000",
        "https://\x90::1]:50:5000/r2/", "http://a b/", "http://[::g]/", "http://h]:5/"}) {
    INFO(bad);
    CHECK_FALSE(Url::parse(bad));
  }
}

TEST_CASE("redirect targets resolve against the current URL", "[unit][url]") {
  const Url base = *Url::parse("https://reg.example/v2/a/blobs/sha256:x");
  CHECK(base.resolve("https://cdn.example/blob?sig=1")->str() == "https://cdn.example/blob?sig=1");
  CHECK(base.resolve("/other")->str() == "https://reg.example/other");
  CHECK(base.resolve("//cdn.example/p")->str() == "https://cdn.example/p");
  CHECK(base.resolve("rel")->str() == "https://reg.example/v2/a/blobs/rel");
}

TEST_CASE("query encoding", "[unit][url]") {
  Url u = *Url::parse("https://auth.docker.io/token");
  u.add_query("service", "registry.docker.io");
  u.add_query("scope", "repository:library/nginx:pull");
  CHECK(u.target == "/token?service=registry.docker.io&scope=repository%3Alibrary%2Fnginx%3Apull");
}

TEST_CASE("a listen address with another port", "[unit][url]") {
  CHECK(*with_port("0.0.0.0:6881", 7000) == "0.0.0.0:7000");
  CHECK(*with_port("[::1]:6881", 0) == "[::1]:0");
  CHECK_FALSE(with_port("[::1]", 7000));
  CHECK_FALSE(with_port("0.0.0.0", 7000));
  CHECK_FALSE(with_port("0.0.0.0:1", 65536));
}

TEST_CASE("base64", "[unit][encoding]") {
  CHECK(base64_encode("user:pass") == "dXNlcjpwYXNz");
  CHECK(base64_encode("") == "");
  CHECK(*base64_decode("dXNlcjpwYXNz") == "user:pass");
  CHECK(*base64_decode("YQ==") == "a");
  CHECK(*base64_decode("YWI=") == "ab");
  CHECK_FALSE(base64_decode("abc"));
  CHECK_FALSE(base64_decode("@@@@"));
  CHECK_FALSE(base64_decode("hTt/p/tt----"));  // found by fuzz_values: OpenSSL trims junk
  CHECK_FALSE(base64_decode("a==="));
  CHECK_FALSE(base64_decode("ab=c"));
}

TEST_CASE("Basic credentials", "[unit][encoding]") {
  const auto c = decode_basic_credentials("dXNlcjpwYTpzcw==");  // user:pa:ss
  REQUIRE(c);
  CHECK(c->username == "user");
  CHECK(c->password == "pa:ss");
  CHECK_FALSE(decode_basic_credentials("dXNlcg=="));  // "user": no colon
  CHECK_FALSE(decode_basic_credentials("@@@@"));
}

TEST_CASE("sizes in configuration files", "[unit][config]") {
  CHECK(parse_size("1048576")->bytes == 1048576u);
  CHECK(parse_size("20GiB")->bytes == 20ull << 30);
  CHECK(parse_size("100MiB")->bytes == 100u << 20);
  CHECK(parse_size("100M")->bytes == 100u << 20);
  CHECK(parse_size("1.5GB")->bytes == 1'500'000'000u);
  CHECK(parse_size("512 KiB")->bytes == 512u << 10);
  auto share = parse_size("85%");
  REQUIRE(share);
  CHECK(share->is_share);
  CHECK(share->of(1000) == 850u);
  for (const char* bad :
       {"", "-1", "10XB", "0%", "101%", "1.5", "GiB", "1..2G", ".5G", "99999999999TiB", "5%%"}) {
    INFO(bad);
    auto r = parse_size(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == make_error_code(Errc::kConfigInvalid));
  }
  CHECK(format_size(17) == "17 B");
  CHECK(format_size(3 << 20) == "3.0 MiB");
}
