// Manifest media types from arbitrary Content-Type and body: a type, when found, is non-empty.
#include <string>

#include "common/mirror/manifest_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto nl = input.find('\n');
  const std::string content_type = input.substr(0, nl);
  const std::string body = nl == std::string::npos ? std::string() : input.substr(nl + 1);
  auto type = layerswarm::mirror::manifest_media_type(content_type, body);
  if (type && type->empty()) __builtin_trap();
  return 0;
}
