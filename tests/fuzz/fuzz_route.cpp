// parse_route on arbitrary request targets: a route it accepts names a valid repository and a
// valid tag or digest; a registry it names is a valid host.
#include <string>

#include "common/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* kMethods[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"};
  const char* method = kMethods[data[0] % 7];
  const std::string target(reinterpret_cast<const char*>(data + 1), size - 1);
  auto route = layerswarm::parse_route(method, target);
  if (!route) return 0;
  using Kind = layerswarm::Route::Kind;
  if (route->kind != Kind::kPing && !layerswarm::is_valid_name(route->name)) __builtin_trap();
  if (!route->registry.empty() && !layerswarm::is_valid_registry_host(route->registry)) {
    __builtin_trap();
  }
  if (route->kind == Kind::kBlob && !route->digest) __builtin_trap();
  if (route->kind == Kind::kManifest && !route->digest && !layerswarm::is_valid_tag(route->tag)) {
    __builtin_trap();
  }
  if (route->digest && !layerswarm::Digest::parse(route->digest->str())) __builtin_trap();
  return 0;
}
