// The swarm API's parsers on arbitrary input: an accepted target names a valid repository,
// registry and digest and builds back to a target that parses to the same request; demand
// bodies never yield an invalid entry.
#include <string>

#include "common/reference.h"
#include "common/swarm_protocol.h"

namespace proto = layerswarm::swarm_protocol;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  if (auto r = proto::parse_target(input)) {
    if (r->kind != proto::Request::Kind::kDemand) {
      if (!layerswarm::is_valid_name(r->blob->repository)) __builtin_trap();
      if (!r->blob->registry.empty() && !layerswarm::is_valid_registry_host(r->blob->registry)) {
        __builtin_trap();
      }
      const std::string again = r->kind == proto::Request::Kind::kChunk
                                    ? proto::chunk_target(*r->blob, r->chunk)
                                    : proto::layout_target(*r->blob);
      auto back = proto::parse_target(again);
      if (!back || back->kind != r->kind || back->chunk != r->chunk ||
          back->blob->repository != r->blob->repository ||
          back->blob->registry != r->blob->registry || !(back->blob->digest == r->blob->digest)) {
        __builtin_trap();
      }
    }
  }
  if (auto d = proto::parse_demand(input)) {
    for (const auto& b : d->blobs) {
      if (!layerswarm::is_valid_name(b.repository)) __builtin_trap();
    }
  }
  return 0;
}
