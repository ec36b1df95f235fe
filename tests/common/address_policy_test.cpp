// Which addresses a client-named (unlisted) registry may make the mirror connect to.
#include <catch2/catch.hpp>

#include "common/address_policy.h"

using layerswarm::is_internal_address;

TEST_CASE("internal addresses are refused for unlisted registries", "[unit][security]") {
  for (const char* a : {"127.0.0.1",
                        "127.8.9.10",
                        "0.0.0.0",
                        "10.1.2.3",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "224.0.0.1",
                        "255.255.255.255",
                        "::1",
                        "::",
                        "fe80::1",
                        "fd00::5",
                        "fc00::1",
                        "ff02::1",
                        "::ffff:127.0.0.1",
                        "::ffff:10.0.0.1",
                        "not-an-ip",
                        ""}) {
    INFO(a);
    CHECK(is_internal_address(a));
  }
}

TEST_CASE("public addresses are allowed", "[unit][security]") {
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1",
                        "192.169.0.1", "2001:4860:4860::8888", "::ffff:8.8.4.4"}) {
    INFO(a);
    CHECK_FALSE(is_internal_address(a));
  }
}
