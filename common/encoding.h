// Base64 (RFC 4648, with padding) for Basic credentials and docker config.json "auth" fields.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace layerswarm {

std::string base64_encode(std::string_view data);
// nullopt for input that is not valid padded base64.
std::optional<std::string> base64_decode(std::string_view text);

struct BasicCredentials {
  std::string username;
  std::string password;
};
// "user:password" in base64, as Basic credentials (RFC 7617) and docker config.json "auth"
// fields carry them; nullopt when the text is not base64 or holds no colon.
std::optional<BasicCredentials> decode_basic_credentials(std::string_view base64);

// Whether `authorization` (a request's Authorization header) carries the cluster `token`:
// "Bearer <token>", compared in constant time. An empty token matches nothing.
bool carries_token(std::string_view authorization, std::string_view token);

// `bytes` random bytes (OpenSSL's generator) in lowercase hex: ids for preheats and rules.
std::string random_hex(std::size_t bytes);

}  // namespace layerswarm
