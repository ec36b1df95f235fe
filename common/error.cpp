#include "common/error.h"

#include <boost/asio/error.hpp>
#include <nlohmann/json.hpp>

namespace layerswarm {
namespace {

struct Entry {
  Errc errc;
  std::string_view name;
  std::string_view oci_code;
  int status;
};

// The one table: project error -> message name, OCI code, HTTP status (PROTOCOL.md 3).
constexpr Entry kTable[] = {
    {Errc::kOk, "ok", "UNKNOWN", 200},
    {Errc::kNameInvalid, "invalid repository name", "NAME_INVALID", 400},
    {Errc::kTagInvalid, "invalid tag", "TAG_INVALID", 400},
    {Errc::kDigestInvalid, "invalid digest", "DIGEST_INVALID", 400},
    {Errc::kRangeInvalid, "requested range not satisfiable", "RANGE_INVALID", 416},
    {Errc::kUnsupported, "the operation is unsupported by this mirror", "UNSUPPORTED", 405},
    {Errc::kNotFound, "no such endpoint", "NOT_FOUND", 404},
    {Errc::kMethodNotAllowed, "method not allowed", "UNSUPPORTED", 405},
    {Errc::kNameUnknown, "repository name not known to registry", "NAME_UNKNOWN", 404},
    {Errc::kManifestUnknown, "manifest unknown", "MANIFEST_UNKNOWN", 404},
    {Errc::kBlobUnknown, "blob unknown to registry", "BLOB_UNKNOWN", 404},
    {Errc::kManifestInvalid, "manifest invalid", "MANIFEST_INVALID", 400},
    {Errc::kDigestMismatch, "content does not match its digest", "UNAVAILABLE", 502},
    {Errc::kTooLarge, "object exceeds the size limit", "UNAVAILABLE", 502},
    {Errc::kUnauthorized, "authentication required by upstream", "DENIED", 403},
    {Errc::kDenied, "upstream denied access", "DENIED", 403},
    {Errc::kTooManyRequests, "upstream rate limit reached", "TOOMANYREQUESTS", 429},
    {Errc::kUpstreamUnavailable, "upstream registry unavailable", "UNAVAILABLE", 503},
    {Errc::kBadUpstreamResponse, "malformed upstream response", "UNAVAILABLE", 502},
    {Errc::kTimeout, "timed out", "UNAVAILABLE", 503},
    {Errc::kConfigInvalid, "invalid configuration", "UNKNOWN", 500},
    {Errc::kStorage, "storage error", "UNKNOWN", 500},
    {Errc::kShuttingDown, "shutting down", "UNAVAILABLE", 503},
    {Errc::kBusy, "busy, try again", "UNAVAILABLE", 503},
    {Errc::kInternal, "internal error", "UNKNOWN", 500},
};

const Entry* find(int value) {
  for (const auto& e : kTable) {
    if (static_cast<int>(e.errc) == value) return &e;
  }
  return nullptr;
}

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "layerswarm"; }
  std::string message(int value) const override {
    const Entry* e = find(value);
    return e ? std::string(e->name) : "unknown layerswarm error";
  }
};

}  // namespace

const boost::system::error_category& error_category() {
  static const Category category;
  return category;
}

OciError to_oci(const boost::system::error_code& ec) {
  if (ec.category() == error_category()) {
    if (const Entry* e = find(ec.value())) return {e->oci_code, e->status};
    return {"UNKNOWN", 500};
  }
  // Sockets, DNS and TLS failures talking to a source: the client should fall back.
  if (ec.category() == boost::asio::error::get_system_category() ||
      ec.category() == boost::asio::error::get_netdb_category() ||
      ec.category() == boost::asio::error::get_misc_category()) {
    return {"UNAVAILABLE", 503};
  }
  return {"UNKNOWN", 500};
}

std::string oci_error_body(const boost::system::error_code& ec, std::string_view message) {
  const OciError oci = to_oci(ec);
  nlohmann::json err = {{"code", oci.code},
                        {"message", message.empty() ? ec.message() : std::string(message)},
                        {"detail", nlohmann::json::object()}};
  nlohmann::json body = {{"errors", nlohmann::json::array({err})}};
  // Invalid UTF-8 from a request never makes it into the body unescaped.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace layerswarm
