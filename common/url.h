// Absolute http/https URLs for upstream registries, token realms and redirects.
// Pure value type; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace layerswarm {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // lowercased; an IPv6 address without brackets
  std::uint16_t port = 0;
  std::string target = "/";  // path and query

  // Errors: kConfigInvalid (not an absolute http(s) URL, bad port, user-info present).
  static Result<Url> parse(std::string_view text);

  bool tls() const { return scheme == "https"; }
  // "host" or "host:port" (port left out when it is the scheme's default); brackets for IPv6.
  std::string authority() const;
  // scheme://authority
  std::string origin() const;
  std::string str() const { return origin() + target; }

  // The URL a redirect's Location names: absolute, or a path relative to this URL's origin.
  Result<Url> resolve(std::string_view location) const;

  // Appends "?k=v" or "&k=v" with the value percent-encoded.
  void add_query(std::string_view key, std::string_view value);
};

std::string percent_encode(std::string_view s);

// The key=value pairs of a query string (after '?'), decoded, in order; at most 256. A pair
// with a malformed escape is dropped.
std::vector<std::pair<std::string, std::string>> query_params(std::string_view query);

// "host:port" (or "[v6]:port") with its port replaced. Errors: kConfigInvalid (no port, or
// `port` outside 0..65535).
Result<std::string> with_port(std::string_view address, int port);

}  // namespace layerswarm
