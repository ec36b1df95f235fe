// layerswarm-agent import (docs/operations.md "Import"): fills the cache of a stopped agent
// from an export (`layerswarm export`: a docker load archive, or an OCI image layout
// directory or tar) with no network: the air-gapped edge, a cold backup. Every blob is hashed
// on its way in; the image's tag is recorded as the agent names it (the same registry and
// repository rules as a pull), so clients pull it from the cache while the upstream is
// unreachable. With `pin`, the image is also pinned (data_dir/pins.json, as `layerswarm
// cache pin` does), so it is never evicted and served past max_stale.
#pragma once

#include <string>

#include "agent/config.h"

namespace layerswarm::agent {

struct ImportOptions {
  std::string file;
  std::string as;  // the reference to file the image under; empty: the archive's own name
  bool pin = false;
};

// 0 imported, 1 the cache could not be opened (a running agent holds it) or the archive is
// damaged (nothing half-imported is tagged), 2 bad usage. Messages on stderr/stdout.
int run_import(const AgentConfig& config, const ImportOptions& options);

}  // namespace layerswarm::agent
