// WWW-Authenticate challenges (RFC 9110 11.6.1) and token-auth scopes, as registries send them
// (PROTOCOL.md 4): scheme case-insensitive, keys lowercased, quoted strings with backslash
// escapes, several challenges per header, scope values holding commas and spaces.
// Pure functions; safe from any thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace layerswarm {

struct Challenge {
  std::string scheme;                         // lowercased: "bearer", "basic", ...
  std::map<std::string, std::string> params;  // keys lowercased, values unescaped

  // The value of `key` (lowercase), or "" when absent.
  std::string param(std::string_view key) const;
};

// Parses one WWW-Authenticate field value. A malformed tail ends the parse: the challenges
// complete before it are returned.
std::vector<Challenge> parse_challenges(std::string_view value);

// Parses every field value and returns the first Bearer challenge with a realm, else the first
// Basic challenge, else nullopt.
std::optional<Challenge> pick_challenge(const std::vector<std::string>& values);

// "repository:<name>:<actions>"; the name may carry a registry port, so the actions start
// after the last ':'.
struct Scope {
  std::string type;
  std::string resource;
  std::string actions;
};
std::optional<Scope> parse_scope(std::string_view scope);

}  // namespace layerswarm
