// Base64 (RFC 4648, with padding) for Basic credentials and docker config.json "auth" fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace layerswarm {

std::string base64_encode(std::string_view data);
// nullopt for input that is not valid padded base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace layerswarm
