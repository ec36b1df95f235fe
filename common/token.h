// Bearer tokens from a registry's token endpoint (PROTOCOL.md 4): parsing the endpoint's JSON
// and deciding where credentials may be sent. Pure functions; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "common/url.h"

namespace layerswarm {

// A bearer token and when it stops being usable.
struct Token {
  std::string value;
  TimePoint expires;
};

// Parses a token endpoint's JSON: "token" or "access_token", "expires_in" (default 60 s,
// clamped to [60 s, 24 h]), "issued_at" (RFC 3339, optional; trusted only when not in the
// future and younger than the lifetime). Errors: kBadUpstreamResponse.
Result<Token> parse_token_response(std::string_view body, TimePoint now);

// Credentials go only to a realm on the registry's own host or registrable domain (last two
// labels), over https unless the registry itself is plain http.
bool realm_may_get_credentials(const Url& realm, const Url& registry);

}  // namespace layerswarm
