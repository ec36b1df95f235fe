#include <catch2/catch.hpp>

#include "common/auth_challenge.h"

using namespace layerswarm;

TEST_CASE("Docker Hub's challenge", "[unit][auth]") {
  auto ch = parse_challenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull")");
  REQUIRE(ch.size() == 1);
  CHECK(ch[0].scheme == "bearer");
  CHECK(ch[0].param("realm") == "https://auth.docker.io/token");
  CHECK(ch[0].param("service") == "registry.docker.io");
  CHECK(ch[0].param("scope") == "repository:library/nginx:pull");
}

TEST_CASE("challenge syntax variants", "[unit][auth]") {
  SECTION("scheme case, key case, spaces around =") {
    auto ch = parse_challenges(R"(BEARER Realm = "r" , SERVICE=s)");
    REQUIRE(ch.size() == 1);
    CHECK(ch[0].scheme == "bearer");
    CHECK(ch[0].param("realm") == "r");
    CHECK(ch[0].param("service") == "s");
  }
  SECTION("escaped quotes and commas and spaces inside quoted scope") {
    auto ch = parse_challenges(
        R"(Bearer realm="a\"b",scope="repository:x:pull,push repository:y:pull",error="insufficient_scope")");
    REQUIRE(ch.size() == 1);
    CHECK(ch[0].param("realm") == "a\"b");
    CHECK(ch[0].param("scope") == "repository:x:pull,push repository:y:pull");
    CHECK(ch[0].param("error") == "insufficient_scope");
  }
  SECTION("several challenges in one field") {
    auto ch =
        parse_challenges(R"(Basic realm="basic", Bearer realm="https://t/token",service="s")");
    REQUIRE(ch.size() == 2);
    CHECK(ch[0].scheme == "basic");
    CHECK(ch[0].param("realm") == "basic");
    CHECK(ch[1].scheme == "bearer");
    CHECK(ch[1].param("service") == "s");
  }
  SECTION("a scheme without parameters, then another") {
    auto ch = parse_challenges(R"(Negotiate, Basic realm="x")");
    REQUIRE(ch.size() == 2);
    CHECK(ch[0].scheme == "negotiate");
    CHECK(ch[1].param("realm") == "x");
  }
  SECTION("malformed tails keep what came before") {
    auto ch = parse_challenges(R"(Bearer realm="unterminated)");
    CHECK(ch.size() == 1);
    CHECK(ch[0].param("realm").empty());
    CHECK(parse_challenges("").empty());
    CHECK(parse_challenges(R"(="x")").empty());
  }
}

TEST_CASE("pick_challenge prefers Bearer with a realm across fields", "[unit][auth]") {
  auto ch = pick_challenge({R"(Basic realm="b")", R"(Bearer realm="https://t",service="s")"});
  REQUIRE(ch);
  CHECK(ch->scheme == "bearer");
  auto basic = pick_challenge({R"(Basic realm="b")", R"(Bearer service="no realm")"});
  REQUIRE(basic);
  CHECK(basic->scheme == "basic");
  CHECK_FALSE(pick_challenge({}));
}

TEST_CASE("scopes split the actions at the last colon", "[unit][auth]") {
  auto s = parse_scope("repository:my.reg:5000/app:pull,push");
  REQUIRE(s);
  CHECK(s->type == "repository");
  CHECK(s->resource == "my.reg:5000/app");
  CHECK(s->actions == "pull,push");
  CHECK_FALSE(parse_scope("repository"));
  CHECK_FALSE(parse_scope("repository:app"));
}
