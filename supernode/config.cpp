#include "supernode/config.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/json_config.h"

namespace layerswarm::supernode {

using nlohmann::json;

namespace {

Status parse_section(const json& j, const char* path, std::initializer_list<std::string_view> keys,
                     std::initializer_list<std::pair<const char*, std::string*>> fields) {
  if (auto s = check_keys(j, keys, path); !s) return s;
  for (const auto& [key, out] : fields) {
    if (auto s = read_string(j, key, path, *out); !s) return s;
  }
  return {};
}

}  // namespace

Result<SupernodeConfig> parse_config(const json& doc) {
  SupernodeConfig c;
  if (auto s =
          check_keys(doc,
                     {"listen", "data_dir", "token_file", "admin_password_file",
                      "copy_rule_interval", "upstream", "registries", "allow_unlisted_registries",
                      "authorize_ttl", "tls", "cache", "upstream_client", "log", "drain_timeout",
                      "audit_log", "p2p_listen", "swarm", "site", "metrics_listen"},
                     "config");
      !s) {
    return s.error();
  }
  Status s = read_string(doc, "listen", "config", c.listen);
  if (s) s = read_string(doc, "audit_log", "config", c.audit_log);
  if (s) s = read_string(doc, "data_dir", "config", c.data_dir);
  if (s) s = read_string(doc, "token_file", "config", c.token_file);
  if (s) s = read_string(doc, "admin_password_file", "config", c.admin_password_file);
  if (s) s = read_duration(doc, "copy_rule_interval", "config", c.copy_rule_interval);
  if (s && c.copy_rule_interval < std::chrono::seconds(1)) {
    s = Error(Errc::kConfigInvalid, "config.copy_rule_interval: at least 1s");
  }
  if (s) s = read_duration(doc, "drain_timeout", "config", c.drain_timeout);
  if (s) s = read_string(doc, "metrics_listen", "config", c.metrics_listen);
  if (s) s = read_string(doc, "p2p_listen", "config", c.p2p_listen);
  if (s && doc.contains("swarm")) {
    const json& w = doc["swarm"];
    s = check_keys(w,
                   {"chunk_size", "min_chunk_size", "chunk_time", "piece_size", "upload_rate_limit",
                    "seed_idle"},
                   "swarm");
    if (s) s = read_uint(w, "chunk_size", "swarm", c.swarm.chunk_size);
    if (s) s = read_uint(w, "min_chunk_size", "swarm", c.swarm.min_chunk_size);
    if (s) s = read_duration(w, "chunk_time", "swarm", c.swarm.chunk_time);
    if (s) s = read_uint(w, "piece_size", "swarm", c.swarm.piece_size);
    if (s) s = read_uint(w, "upload_rate_limit", "swarm", c.swarm.upload_rate_limit);
    if (s) s = read_duration(w, "seed_idle", "swarm", c.swarm.seed_idle);
  }
  if (s && doc.contains("tls")) {
    s = parse_section(doc["tls"], "tls", {"listen", "cert", "key"},
                      {{"listen", &c.tls.listen}, {"cert", &c.tls.cert}, {"key", &c.tls.key}});
  }
  if (s && doc.contains("site")) {
    const json& t = doc["site"];
    s = check_keys(t, {"ca_cert", "ca_key", "member_validity"}, "site");
    if (s) s = read_string(t, "ca_cert", "site", c.site.ca_cert);
    if (s) s = read_string(t, "ca_key", "site", c.site.ca_key);
    if (s) s = read_duration(t, "member_validity", "site", c.site.member_validity);
  }
  if (s && doc.contains("log")) {
    s = parse_section(doc["log"], "log", {"level", "file"},
                      {{"level", &c.log.level}, {"file", &c.log.file}});
  }
  if (s) s = mirror::parse_mirror_options(doc, c.mirror);
  if (!s) return s.error();
  return c;
}

Result<SupernodeConfig> load_config(const std::string& file, const Overrides& o) {
  auto doc = load_config_document(file);
  if (!doc) return doc.error();
  auto parsed = parse_config(*doc);
  if (!parsed) return config_file_error(file, parsed.error());
  SupernodeConfig c = std::move(*parsed);
  if (!o.listen.empty()) c.listen = o.listen;
  if (!o.data_dir.empty()) c.data_dir = o.data_dir;
  if (!o.upstream.empty()) c.mirror.upstream = o.upstream;
  if (!o.token_file.empty()) c.token_file = o.token_file;
  if (!o.log_level.empty()) c.log.level = o.log_level;
  if (!o.p2p_listen.empty()) c.p2p_listen = o.p2p_listen;
  if (auto s = apply_port_flag(c.p2p_listen, o.p2p_port); !s) return s.error();
  if (auto s = mirror::apply_registry_flags(o.registries, c.mirror); !s) return s.error();
  auto bad = [](const std::string& m) { return Error(Errc::kConfigInvalid, m); };
  if (c.listen.empty()) return bad("listen must not be empty");
  if (c.data_dir.empty()) return bad("data_dir must not be empty");
  if (c.token_file.empty()) return bad("token_file is required: agents prove membership with it");
  if (!c.tls.listen.empty() && (c.tls.cert.empty() || c.tls.key.empty())) {
    return bad("tls.listen needs tls.cert and tls.key");
  }
  if (c.site.ca_cert.empty() != c.site.ca_key.empty()) {
    return bad("site.ca_cert and site.ca_key are given together");
  }
  if (!c.site.ca_cert.empty() && c.tls.listen.empty()) {
    return bad("a closed site (site.ca_cert) serves its agents over https: set tls.listen");
  }
  if (c.site.member_validity < std::chrono::hours(1)) {
    return bad("site.member_validity must be at least 1h");
  }
  const auto p = c.swarm.piece_size;
  if (p < (16 << 10) || p > (16 << 20) || (p & (p - 1)) != 0) {
    return bad("swarm.piece_size must be a power of two from 16 KiB to 16 MiB");
  }
  if (c.swarm.chunk_size < p || c.swarm.chunk_size % p != 0) {
    return bad("swarm.chunk_size must be a multiple of swarm.piece_size");
  }
  // A min_chunk_size above chunk_size means fixed chunks of chunk_size (a small chunk_size
  // alone turns the sizing off).
  c.swarm.min_chunk_size = std::min(c.swarm.min_chunk_size, c.swarm.chunk_size);
  if (c.swarm.min_chunk_size < p || c.swarm.min_chunk_size % p != 0) {
    return bad("swarm.min_chunk_size must be a multiple of swarm.piece_size");
  }
  if (c.swarm.chunk_time <= Millis(0)) return bad("swarm.chunk_time must be positive");
  if (c.swarm.seed_idle <= Millis(0)) return bad("swarm.seed_idle must be positive");
  if (c.swarm.upload_rate_limit > (1ull << 31)) return bad("swarm.upload_rate_limit too large");
  if (auto s = mirror::validate_mirror_options(c.mirror); !s) return s.error();
  return c;
}

}  // namespace layerswarm::supernode
