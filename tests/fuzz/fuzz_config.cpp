// The agent's JSON configuration parser on arbitrary documents: never crashes, and anything it
// accepts has the values validate() promises.
#include <nlohmann/json.hpp>
#include <string>

#include "agent/config.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto doc = nlohmann::json::parse(data, data + size, nullptr, false);
  if (doc.is_discarded()) return 0;
  auto config = layerswarm::agent::parse_config(doc);
  if (config && config->mirror.cache.ttl.count() < 0) __builtin_trap();
  return 0;
}
