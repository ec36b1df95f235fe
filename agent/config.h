// The agent's configuration: one JSON file (unknown keys are errors), every key with a default
// (docs/configuration.md), command-line flags applied on top. Immutable once the agent starts.
// The keys shared with the supernode (upstream, registries, cache, upstream_client) are
// MirrorOptions.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/mirror/options.h"
#include "common/result.h"

namespace layerswarm::agent {

using Millis = std::chrono::milliseconds;

struct AgentConfig {
  std::string listen = "127.0.0.1:65001";
  std::string data_dir = "/var/lib/layerswarm/agent";
  mirror::MirrorOptions mirror;

  struct Tls {
    std::string listen;  // empty: no TLS listener
    std::string cert;
    std::string key;
  } tls;

  struct Log {
    std::string level = "info";
    std::string file;  // empty: stderr
  } log;

  Millis drain_timeout = std::chrono::seconds(10);

  // The site's supernode: asked first for manifests and blobs. Empty: none.
  std::string supernode;
  std::string token_file;         // the cluster token (needed with a supernode)
  std::string supernode_ca_file;  // PEM CA for an https supernode
  // When the supernode cannot answer, ask the registry directly (false: fail instead).
  bool direct_fallback = true;
};

// Parses a whole configuration document. Errors: kConfigInvalid naming the key.
Result<AgentConfig> parse_config(const nlohmann::json& doc);

// Flag values that override the file (empty = not given).
struct Overrides {
  std::string listen;
  std::string data_dir;
  std::string upstream;
  std::vector<std::string> registries;  // HOST=URL
  std::string log_level;
  std::string supernode;
  std::string token_file;
};

// Loads `file` (or the defaults when empty), applies `overrides`, and checks the result.
// Errors: kConfigInvalid.
Result<AgentConfig> load_config(const std::string& file, const Overrides& overrides);

}  // namespace layerswarm::agent
