// The supernode's configuration: one JSON file (unknown keys are errors), every key with a
// default (docs/configuration.md), flags on top. The keys shared with the agent (upstream,
// registries, cache, upstream_client) are MirrorOptions.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "common/mirror/options.h"
#include "common/result.h"

namespace layerswarm::supernode {

using Millis = std::chrono::milliseconds;

struct SupernodeConfig {
  std::string listen = "0.0.0.0:65100";
  std::string data_dir = "/var/lib/layerswarm/supernode";
  std::string token_file;  // the cluster token: required
  // A second secret for people (docs/operations.md "Status page"): it opens the status page
  // and the read-only API (GET /api/v1/status, /api/v1/agents, /api/v1/preheat, /metrics), not
  // the cluster's content or its swarm. Empty: only the token does.
  std::string admin_password_file;
  // How often copy rules are checked (docs/operations.md "Copies that stay").
  std::chrono::milliseconds copy_rule_interval{std::chrono::seconds(60)};
  mirror::MirrorOptions mirror;

  struct Tls {
    std::string listen;  // empty: no TLS listener
    std::string cert;
    std::string key;
  } tls;

  // A closed site (docs/security.md): the site CA signs a member certificate for every agent
  // that asks with the token; chunk torrents carry the CA and exchange pieces with members
  // only, over TLS; the control plane is https only.
  struct Site {
    std::string ca_cert;  // PEM; empty: an open site (plaintext swarm, token in announce URLs)
    std::string ca_key;   // PEM, readable by the supernode only
    Millis member_validity = std::chrono::hours(24 * 30);
  } site;

  // JSON lines of who pulled what, when (common/audit.h); empty: off.
  std::string audit_log;

  struct Log {
    std::string level = "info";
    std::string file;
  } log;

  Millis drain_timeout = std::chrono::seconds(10);
  // A listener for /metrics, /healthz and /readyz only, without the token ("" : none).
  std::string metrics_listen;

  // BitTorrent: the supernode seeds every chunk it publishes.
  std::string p2p_listen = "0.0.0.0:6881";
  struct Swarm {
    std::uint64_t chunk_size = 4 << 20;  // bytes per chunk torrent, at most
    // A slow upstream link gets smaller chunks, down to this (docs/architecture.md "Chunks
    // sized to the link"): a chunk takes at most chunk_time. Above chunk_size: chunk_size.
    std::uint64_t min_chunk_size = 1 << 20;
    Millis chunk_time = std::chrono::seconds(3);
    std::uint64_t piece_size = 256 << 10;  // power of two, 16 KiB..16 MiB (kDefaultPieceSize)
    std::uint64_t upload_rate_limit = 0;   // bytes per second, 0: unlimited
    // A published blob nobody asked for or downloaded from for this long is withdrawn.
    Millis seed_idle = std::chrono::minutes(30);
  } swarm;
};

Result<SupernodeConfig> parse_config(const nlohmann::json& doc);

struct Overrides {
  std::string listen;
  std::string data_dir;
  std::string upstream;
  std::string token_file;
  std::vector<std::string> registries;  // HOST=URL
  std::string log_level;
  std::string p2p_listen;  // "ip:port"
  int p2p_port = -1;       // replaces p2p_listen's port
};

// Loads `file` (or the defaults), applies `overrides`, checks. Errors: kConfigInvalid.
Result<SupernodeConfig> load_config(const std::string& file, const Overrides& overrides);

}  // namespace layerswarm::supernode
