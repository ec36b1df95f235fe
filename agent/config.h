// The agent's configuration: one JSON file (unknown keys are errors), every key with a default
// (docs/configuration.md), command-line flags applied on top. Immutable once the agent starts.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/registry_config.h"
#include "common/result.h"

namespace layerswarm::agent {

using Millis = std::chrono::milliseconds;

struct AgentConfig {
  std::string listen = "127.0.0.1:65001";
  std::string data_dir = "/var/lib/layerswarm/agent";
  // The upstream for requests that name none: a URL, or a host in the registries table.
  std::string upstream = "https://registry-1.docker.io";
  Registries registries;
  // Requests may name registries missing from the table (reached over https, anonymously).
  bool allow_unlisted_registries = true;

  struct Tls {
    std::string listen;  // empty: no TLS listener
    std::string cert;
    std::string key;
  } tls;

  struct Cache {
    Millis ttl = std::chrono::hours(24 * 7);        // unused objects are removed after this
    Millis tag_ttl = std::chrono::seconds(30);      // tags answered without asking upstream
    Millis max_stale = std::chrono::hours(24 * 7);  // tags served while upstream is down
    Millis sweep_interval = std::chrono::hours(1);
  } cache;

  struct UpstreamClient {
    Millis connect_timeout = std::chrono::seconds(10);
    Millis read_timeout = std::chrono::seconds(30);
    // Until the upstream's answer (all retries and auth included); clients time out at 30 s.
    Millis response_timeout = std::chrono::seconds(20);
    std::uint64_t retries = 3;
  } upstream_client;

  struct Log {
    std::string level = "info";
    std::string file;  // empty: stderr
  } log;

  Millis drain_timeout = std::chrono::seconds(10);
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
};

// Loads `file` (or the defaults when empty), applies `overrides`, and checks the result.
// Errors: kConfigInvalid.
Result<AgentConfig> load_config(const std::string& file, const Overrides& overrides);

}  // namespace layerswarm::agent
