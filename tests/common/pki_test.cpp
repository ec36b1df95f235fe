#include "common/pki.h"

#include <catch2/catch.hpp>
#include <chrono>

namespace pki = layerswarm::pki;
using namespace std::chrono_literals;

namespace {

std::string must(layerswarm::Result<std::string> r) {
  REQUIRE(r);
  return std::move(*r);
}

struct Site {
  std::string ca_key = must(pki::generate_key());
  std::string ca = must(pki::make_ca(ca_key, "test site CA", 24h));
};

}  // namespace

TEST_CASE("a member certificate is signed by the site CA and names any torrent", "[unit][pki]") {
  Site site;
  const std::string key = must(pki::generate_key());
  const std::string pub = must(pki::public_key_der(key));
  pki::Subject subject{"member 10.0.0.7", {"*"}, {}};
  const std::string cert =
      must(pki::issue(site.ca, site.ca_key, pub, subject, pki::Usage::kMember, 48h));
  CHECK(pki::verify(site.ca, cert));
  CHECK(pki::key_matches(cert, key));
  auto info = pki::inspect(cert);
  REQUIRE(info);
  CHECK(info->common_name == "member 10.0.0.7");
  CHECK(info->fingerprint.size() == 64);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  CHECK(info->not_after > now + 47 * 3600);
  CHECK(info->not_after < now + 49 * 3600);
}

TEST_CASE("another CA's certificate, a self-signed one and a wrong key are refused",
          "[unit][pki]") {
  Site site;
  Site other;
  const std::string key = must(pki::generate_key());
  const std::string pub = must(pki::public_key_der(key));
  const std::string foreign =
      must(pki::issue(other.ca, other.ca_key, pub, {"x", {"*"}, {}}, pki::Usage::kMember, 1h));
  const auto refused = pki::verify(site.ca, foreign);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == make_error_code(layerswarm::Errc::kDenied));
  CHECK_FALSE(pki::verify(site.ca, other.ca));
  CHECK_FALSE(pki::key_matches(foreign, must(pki::generate_key())));
  // The CA key must match the CA certificate.
  CHECK_FALSE(pki::issue(site.ca, other.ca_key, pub, {"x", {}, {}}, pki::Usage::kMember, 1h));
}

TEST_CASE("a server certificate carries its names and addresses", "[unit][pki]") {
  Site site;
  const std::string key = must(pki::generate_key());
  const std::string cert = must(pki::issue(
      site.ca, site.ca_key, must(pki::public_key_der(key)),
      {"supernode", {"supernode.example", "*"}, {"127.0.0.1", "::1"}}, pki::Usage::kServer, 24h));
  CHECK(pki::verify(site.ca, cert));
  CHECK(cert.find("BEGIN CERTIFICATE") != std::string::npos);
}

TEST_CASE("bad input is an error, not a crash", "[unit][pki]") {
  Site site;
  CHECK_FALSE(pki::public_key_der("not a key"));
  CHECK_FALSE(pki::inspect("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
  CHECK_FALSE(pki::issue(site.ca, site.ca_key, "\x30\x03\x02\x01\x00", {"x", {}, {}},
                         pki::Usage::kMember, 1h));
  CHECK_FALSE(pki::issue(site.ca, site.ca_key, "", {"x", {}, {}}, pki::Usage::kMember, 1h));
  CHECK_FALSE(pki::verify("junk", site.ca));
}

TEST_CASE("DH parameters are PEM", "[unit][pki]") {
  const std::string dh = must(pki::dh_params());
  CHECK(dh.find("BEGIN DH PARAMETERS") != std::string::npos);
}
