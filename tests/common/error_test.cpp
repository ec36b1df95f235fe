#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <boost/asio/error.hpp>

#include "common/error.h"

using namespace layerswarm;

TEST_CASE("every project error maps to an OCI code and status", "[unit][error]") {
  struct Case {
    Errc errc;
    std::string code;
    int status;
  };
  const Case cases[] = {
      {Errc::kNameInvalid, "NAME_INVALID", 400},
      {Errc::kTagInvalid, "TAG_INVALID", 400},
      {Errc::kDigestInvalid, "DIGEST_INVALID", 400},
      {Errc::kManifestInvalid, "MANIFEST_INVALID", 400},
      {Errc::kRangeInvalid, "RANGE_INVALID", 416},
      {Errc::kUnsupported, "UNSUPPORTED", 405},
      {Errc::kNameUnknown, "NAME_UNKNOWN", 404},
      {Errc::kManifestUnknown, "MANIFEST_UNKNOWN", 404},
      {Errc::kBlobUnknown, "BLOB_UNKNOWN", 404},
      {Errc::kUnauthorized, "DENIED", 403},  // our credentials were refused upstream
      {Errc::kDenied, "DENIED", 403},
      {Errc::kTooManyRequests, "TOOMANYREQUESTS", 429},
      {Errc::kUpstreamUnavailable, "UNAVAILABLE", 503},
      {Errc::kTimeout, "UNAVAILABLE", 503},
      {Errc::kDigestMismatch, "UNAVAILABLE", 502},
      {Errc::kBadUpstreamResponse, "UNAVAILABLE", 502},
      {Errc::kInternal, "UNKNOWN", 500},
      {Errc::kStorage, "UNKNOWN", 500},
  };
  for (const auto& c : cases) {
    INFO(make_error_code(c.errc).message());
    const OciError oci = to_oci(make_error_code(c.errc));
    CHECK(oci.code == c.code);
    CHECK(oci.status == c.status);
  }
}

TEST_CASE("network errors map to 503 so clients fall back", "[unit][error]") {
  const OciError refused = to_oci(make_error_code(boost::asio::error::connection_refused));
  CHECK(refused.status == 503);
  CHECK(refused.code == "UNAVAILABLE");
  CHECK(to_oci(make_error_code(boost::asio::error::host_not_found)).status == 503);
}

TEST_CASE("the error body is the OCI error JSON", "[unit][error]") {
  const std::string body = oci_error_body(make_error_code(Errc::kBlobUnknown), "no \xff blob");
  const auto j = nlohmann::json::parse(body);
  REQUIRE(j["errors"].size() == 1);
  CHECK(j["errors"][0]["code"] == "BLOB_UNKNOWN");
  CHECK(j["errors"][0]["message"].get<std::string>().find("blob") != std::string::npos);
  CHECK(j["errors"][0]["detail"].is_object());
}
