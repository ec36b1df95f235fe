// Token endpoint answers: a token parsed from any body is non-empty and not yet expired (a
// skewed or hostile issued_at must not make it look stale on arrival).
#include <string>

#include "common/token.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const auto now = layerswarm::from_unix_ms(1'700'000'000'000);
  auto token = layerswarm::parse_token_response(body, now);
  if (token) {
    if (token->value.empty()) __builtin_trap();
    if (token->expires <= now) __builtin_trap();
  }
  return 0;
}
