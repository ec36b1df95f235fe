// WWW-Authenticate parsing and scope splitting on arbitrary header values.
#include <string>
#include <vector>

#include "common/auth_challenge.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string value(reinterpret_cast<const char*>(data), size);
  for (const auto& ch : layerswarm::parse_challenges(value)) {
    if (ch.scheme.empty()) __builtin_trap();
    for (const auto& [key, v] : ch.params) {
      if (key.empty()) __builtin_trap();
      if (auto scope = layerswarm::parse_scope(v)) {
        if (scope->type.empty() || scope->resource.empty()) __builtin_trap();
      }
    }
  }
  (void)layerswarm::pick_challenge({value, value});
  return 0;
}
