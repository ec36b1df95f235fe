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

// Upper bound of swarm.max_seeding_blobs: with the agent's other descriptors it stays well
// under the 1024 of systemd's default soft limit, even where the limit cannot be raised.
inline constexpr std::uint64_t kMaxSeedingBlobs = 512;
// Upper bound of swarm.max_seeding_torrents.
inline constexpr std::uint64_t kMaxSeedingTorrents = 1'000'000;
// swarm.max_peer_connections: its default and range.
inline constexpr std::uint64_t kDefaultPeerConnections = 128;
inline constexpr std::uint64_t kMinPeerConnections = 16;
inline constexpr std::uint64_t kMaxPeerConnections = 8000;

struct AgentConfig {
  std::string listen = "127.0.0.1:65001";
  std::string data_dir = "/var/lib/layerswarm/agent";
  mirror::MirrorOptions mirror;

  struct Tls {
    std::string listen;  // empty: no TLS listener
    std::string cert;
    std::string key;
  } tls;

  // JSON lines of who pulled what, when (common/audit.h); empty: off.
  std::string audit_log;

  struct Log {
    std::string level = "info";
    std::string file;  // empty: stderr
  } log;

  Millis drain_timeout = std::chrono::seconds(10);
  // A listener for /metrics, /healthz and /readyz only ("" : none; they are on `listen` too).
  std::string metrics_listen;

  // The site's supernode: asked first for manifests and blobs. Empty: none.
  std::string supernode;
  std::string token_file;         // the cluster token (needed with a supernode)
  std::string supernode_ca_file;  // PEM CA for an https supernode
  // When the supernode cannot answer, ask the registry directly (false: fail instead).
  bool direct_fallback = true;

  // The swarm (with a supernode): BitTorrent between the site's nodes.
  std::string p2p_listen = "0.0.0.0:6881";  // port 0 picks one
  std::string zone;                         // zone/rack label: peers alike are preferred
  struct Swarm {
    bool enabled = true;
    std::uint64_t upload_rate_limit = 0;  // bytes per second, 0: unlimited
    std::uint64_t download_rate_limit = 0;
    Millis stall_timeout = std::chrono::seconds(10);  // then HTTP from the supernode
    std::uint64_t min_blob_size = 1 << 20;            // smaller blobs: HTTP from the supernode
    // Pieces just ahead of the reader that get top priority. 0: rarest-first only (measured
    // faster for a rollout: nodes reading in step all ask the supernode for the same pieces).
    std::uint64_t priority_window = 0;
    // Cached blobs are seeded while in demand (seeder.h): unloaded after this long with no
    // demand and no upload, and at most this many at once (one descriptor each).
    Millis seed_idle = std::chrono::minutes(5);
    std::uint64_t max_seeding_blobs = 64;
    // Chunk torrents in the swarm at once, downloads' included (~10 KiB of memory each,
    // docs/configuration.md); seeding blobs make way for downloads.
    std::uint64_t max_seeding_torrents = 2048;
    std::uint64_t peers_per_torrent = 16;  // connections per chunk torrent (docs/configuration.md)
    // Upload slots for all chunk torrents together; 0: one for every interested peer
    // (docs/configuration.md).
    std::uint64_t upload_slots = 16;
    // One copy of a block in flight (common/p2p/one_copy.h): a request for a block another
    // connection has in flight waits while that connection delivers; 0 is libtorrent's end game.
    Millis duplicate_wait = std::chrono::milliseconds(1500);
    // Peer connections of all chunk torrents together (docs/configuration.md): with the idle
    // descriptors and the seeding blobs' files, the agent's descriptors stay under 256.
    std::uint64_t max_peer_connections = kDefaultPeerConnections;
  } swarm;
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
  std::string zone;
  std::string p2p_listen;
  int p2p_port = -1;  // replaces p2p_listen's port
};

// Loads `file` (or the defaults when empty), applies `overrides`, and checks the result.
// Errors: kConfigInvalid.
Result<AgentConfig> load_config(const std::string& file, const Overrides& overrides);

}  // namespace layerswarm::agent
