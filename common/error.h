// The project's one error vocabulary (STYLE.md 7): a boost::system error category whose
// values name what went wrong, and one table mapping each to the OCI error code and HTTP
// status a mirror answers with. Errors from other categories (sockets, files) map to
// UNAVAILABLE or UNKNOWN.
#pragma once

#include <boost/system/error_code.hpp>
#include <string>
#include <string_view>
#include <type_traits>

namespace layerswarm {

enum class Errc {
  kOk = 0,
  // Request grammar.
  kNameInvalid,
  kTagInvalid,
  kDigestInvalid,
  kRangeInvalid,
  kUnsupported,  // push, delete and other endpoints a mirror does not serve
  kNotFound,     // no such endpoint
  kMethodNotAllowed,
  // Content.
  kNameUnknown,
  kManifestUnknown,
  kBlobUnknown,
  kManifestInvalid,
  kDigestMismatch,  // bytes from a source did not hash to the requested digest
  kTooLarge,        // an object exceeded a size cap (manifests: 4 MiB)
  // Upstream.
  kUnauthorized,         // upstream wants credentials we do not have
  kDenied,               // upstream refused our credentials
  kTooManyRequests,      // upstream rate limit
  kUpstreamUnavailable,  // unreachable, timed out, or answered 5xx
  kBadUpstreamResponse,  // malformed answer (missing length, bad challenge, bad token)
  kTimeout,
  // Local.
  kConfigInvalid,
  kStorage,
  kShuttingDown,
  kBusy,  // a resource is held by work still finishing: try again shortly
  kInternal,
};

const boost::system::error_category& error_category();

inline boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), error_category()};
}

// How an error is reported to an OCI client.
struct OciError {
  std::string_view code;  // e.g. "BLOB_UNKNOWN"
  int status;             // HTTP status
};

// Maps any error code to the OCI code and status a mirror answers with.
OciError to_oci(const boost::system::error_code& ec);

// The JSON error body: {"errors":[{"code":..,"message":..,"detail":{}}]}.
std::string oci_error_body(const boost::system::error_code& ec, std::string_view message);

}  // namespace layerswarm

namespace boost::system {
template <>
struct is_error_code_enum<layerswarm::Errc> : std::true_type {};
}  // namespace boost::system
