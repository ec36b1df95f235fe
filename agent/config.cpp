#include "agent/config.h"

#include <nlohmann/json.hpp>

#include "common/json_config.h"
#include "common/url.h"

namespace layerswarm::agent {

using nlohmann::json;

namespace {

Status parse_tls(const json& j, AgentConfig::Tls& tls) {
  if (auto s = check_keys(j, {"listen", "cert", "key"}, "tls"); !s) return s;
  Status s = read_string(j, "listen", "tls", tls.listen);
  if (s) s = read_string(j, "cert", "tls", tls.cert);
  if (s) s = read_string(j, "key", "tls", tls.key);
  return s;
}

Status parse_log(const json& j, AgentConfig::Log& l) {
  if (auto s = check_keys(j, {"level", "file"}, "log"); !s) return s;
  Status s = read_string(j, "level", "log", l.level);
  if (s) s = read_string(j, "file", "log", l.file);
  return s;
}

Status parse_swarm(const json& j, AgentConfig::Swarm& w) {
  if (auto s = check_keys(
          j,
          {"enabled", "upload_rate_limit", "download_rate_limit", "stall_timeout", "min_blob_size",
           "priority_window", "seed_idle", "max_seeding_blobs", "max_seeding_torrents",
           "peers_per_torrent", "upload_slots", "duplicate_wait", "max_peer_connections"},
          "swarm");
      !s) {
    return s;
  }
  Status s = read_bool(j, "enabled", "swarm", w.enabled);
  if (s) s = read_uint(j, "upload_rate_limit", "swarm", w.upload_rate_limit);
  if (s) s = read_uint(j, "download_rate_limit", "swarm", w.download_rate_limit);
  if (s) s = read_duration(j, "stall_timeout", "swarm", w.stall_timeout);
  if (s) s = read_uint(j, "min_blob_size", "swarm", w.min_blob_size);
  if (s) s = read_uint(j, "priority_window", "swarm", w.priority_window);
  if (s) s = read_duration(j, "seed_idle", "swarm", w.seed_idle);
  if (s) s = read_uint(j, "max_seeding_blobs", "swarm", w.max_seeding_blobs);
  if (s) s = read_uint(j, "max_seeding_torrents", "swarm", w.max_seeding_torrents);
  if (s) s = read_uint(j, "peers_per_torrent", "swarm", w.peers_per_torrent);
  if (s) s = read_uint(j, "upload_slots", "swarm", w.upload_slots);
  if (s) s = read_duration(j, "duplicate_wait", "swarm", w.duplicate_wait);
  if (s) s = read_uint(j, "max_peer_connections", "swarm", w.max_peer_connections);
  return s;
}

Status validate(const AgentConfig& c) {
  auto bad = [](const std::string& m) { return Status(Error(Errc::kConfigInvalid, m)); };
  if (c.listen.empty()) return bad("listen must not be empty");
  if (c.data_dir.empty()) return bad("data_dir must not be empty");
  if (!c.tls.listen.empty() && (c.tls.cert.empty() || c.tls.key.empty())) {
    return bad("tls.listen needs tls.cert and tls.key");
  }
  if (!c.supernode.empty()) {
    if (auto u = Url::parse(c.supernode); !u) return bad("supernode: " + u.error().what());
    if (c.token_file.empty()) return bad("supernode needs token_file (the cluster token)");
  }
  if (c.p2p_listen.empty()) return bad("p2p_listen must not be empty");
  if (auto p = with_port(c.p2p_listen, 0); !p) return bad("p2p_listen: " + p.error().what());
  if (c.zone.size() > 64) return bad("zone must be at most 64 characters");
  if (c.swarm.upload_rate_limit > (1ull << 31) || c.swarm.download_rate_limit > (1ull << 31)) {
    return bad("swarm rate limits must be below 2 GiB/s");
  }
  if (c.swarm.stall_timeout.count() <= 0) return bad("swarm.stall_timeout must be positive");
  if (c.swarm.priority_window > 64) return bad("swarm.priority_window must be at most 64");
  if (c.swarm.peers_per_torrent < 2 || c.swarm.peers_per_torrent > 64) {
    return bad("swarm.peers_per_torrent must be from 2 to 64");
  }
  if (c.swarm.upload_slots > 100'000) return bad("swarm.upload_slots must be at most 100000");
  if (c.swarm.max_peer_connections < kMinPeerConnections ||
      c.swarm.max_peer_connections > kMaxPeerConnections) {
    return bad("swarm.max_peer_connections must be from " + std::to_string(kMinPeerConnections) +
               " to " + std::to_string(kMaxPeerConnections));
  }
  if (c.swarm.seed_idle.count() <= 0) return bad("swarm.seed_idle must be positive");
  if (c.swarm.max_seeding_blobs < 1 || c.swarm.max_seeding_blobs > kMaxSeedingBlobs) {
    return bad("swarm.max_seeding_blobs must be from 1 to " + std::to_string(kMaxSeedingBlobs));
  }
  if (c.swarm.max_seeding_torrents < 1 || c.swarm.max_seeding_torrents > kMaxSeedingTorrents) {
    return bad("swarm.max_seeding_torrents must be from 1 to " +
               std::to_string(kMaxSeedingTorrents));
  }
  return mirror::validate_mirror_options(c.mirror);
}

}  // namespace

Result<AgentConfig> parse_config(const json& doc) {
  AgentConfig c;
  if (auto s = check_keys(doc,
                          {"listen",
                           "data_dir",
                           "upstream",
                           "registries",
                           "allow_unlisted_registries",
                           "authorize_ttl",
                           "tls",
                           "cache",
                           "upstream_client",
                           "log",
                           "drain_timeout",
                           "metrics_listen",
                           "audit_log",
                           "supernode",
                           "token_file",
                           "supernode_ca_file",
                           "direct_fallback",
                           "p2p_listen",
                           "zone",
                           "swarm"},
                          "config");
      !s) {
    return s.error();
  }
  Status s = read_string(doc, "listen", "config", c.listen);
  if (s) s = read_string(doc, "audit_log", "config", c.audit_log);
  if (s) s = read_string(doc, "data_dir", "config", c.data_dir);
  if (s) s = read_duration(doc, "drain_timeout", "config", c.drain_timeout);
  if (s) s = read_string(doc, "metrics_listen", "config", c.metrics_listen);
  if (s) s = read_string(doc, "supernode", "config", c.supernode);
  if (s) s = read_string(doc, "token_file", "config", c.token_file);
  if (s) s = read_string(doc, "supernode_ca_file", "config", c.supernode_ca_file);
  if (s) s = read_bool(doc, "direct_fallback", "config", c.direct_fallback);
  if (s) s = read_string(doc, "p2p_listen", "config", c.p2p_listen);
  if (s) s = read_string(doc, "zone", "config", c.zone);
  if (s && doc.contains("swarm")) s = parse_swarm(doc["swarm"], c.swarm);
  if (s && doc.contains("tls")) s = parse_tls(doc["tls"], c.tls);
  if (s && doc.contains("log")) s = parse_log(doc["log"], c.log);
  if (s) s = mirror::parse_mirror_options(doc, c.mirror);
  if (!s) return s.error();
  return c;
}

Result<AgentConfig> load_config(const std::string& file, const Overrides& o) {
  auto doc = load_config_document(file);
  if (!doc) return doc.error();
  auto parsed = parse_config(*doc);
  if (!parsed) return config_file_error(file, parsed.error());
  AgentConfig c = std::move(*parsed);
  if (!o.listen.empty()) c.listen = o.listen;
  if (!o.data_dir.empty()) c.data_dir = o.data_dir;
  if (!o.upstream.empty()) c.mirror.upstream = o.upstream;
  if (!o.log_level.empty()) c.log.level = o.log_level;
  if (!o.supernode.empty()) c.supernode = o.supernode;
  if (!o.token_file.empty()) c.token_file = o.token_file;
  if (!o.zone.empty()) c.zone = o.zone;
  if (!o.p2p_listen.empty()) c.p2p_listen = o.p2p_listen;
  if (auto s = apply_port_flag(c.p2p_listen, o.p2p_port); !s) return s.error();
  if (auto s = mirror::apply_registry_flags(o.registries, c.mirror); !s) return s.error();
  if (auto s = validate(c); !s) return s.error();
  return c;
}

}  // namespace layerswarm::agent
