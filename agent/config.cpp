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

Status parse_cache(const json& j, AgentConfig::Cache& c) {
  if (auto s = check_keys(j, {"ttl", "tag_ttl", "max_stale", "sweep_interval"}, "cache"); !s) {
    return s;
  }
  Status s = read_duration(j, "ttl", "cache", c.ttl);
  if (s) s = read_duration(j, "tag_ttl", "cache", c.tag_ttl);
  if (s) s = read_duration(j, "max_stale", "cache", c.max_stale);
  if (s) s = read_duration(j, "sweep_interval", "cache", c.sweep_interval);
  return s;
}

Status parse_upstream_client(const json& j, AgentConfig::UpstreamClient& u) {
  const char* path = "upstream_client";
  if (auto s =
          check_keys(j, {"connect_timeout", "read_timeout", "response_timeout", "retries"}, path);
      !s) {
    return s;
  }
  Status s = read_duration(j, "connect_timeout", path, u.connect_timeout);
  if (s) s = read_duration(j, "read_timeout", path, u.read_timeout);
  if (s) s = read_duration(j, "response_timeout", path, u.response_timeout);
  if (s) s = read_uint(j, "retries", path, u.retries);
  return s;
}

Status parse_log(const json& j, AgentConfig::Log& l) {
  if (auto s = check_keys(j, {"level", "file"}, "log"); !s) return s;
  Status s = read_string(j, "level", "log", l.level);
  if (s) s = read_string(j, "file", "log", l.file);
  return s;
}

Status validate(const AgentConfig& c) {
  auto bad = [](const std::string& m) { return Status(Error(Errc::kConfigInvalid, m)); };
  if (c.listen.empty()) return bad("listen must not be empty");
  if (c.data_dir.empty()) return bad("data_dir must not be empty");
  if (c.upstream.find("://") != std::string::npos) {
    if (auto u = Url::parse(c.upstream); !u) return bad("upstream: " + u.error().what());
  } else if (!c.registries.contains(c.upstream)) {
    return bad("upstream '" + c.upstream + "' is neither a URL nor a registries entry");
  }
  if (!c.tls.listen.empty() && (c.tls.cert.empty() || c.tls.key.empty())) {
    return bad("tls.listen needs tls.cert and tls.key");
  }
  if (c.cache.tag_ttl.count() < 0 || c.cache.ttl.count() <= 0) return bad("cache.ttl must be > 0");
  if (c.cache.sweep_interval.count() <= 0) return bad("cache.sweep_interval must be > 0");
  if (c.upstream_client.retries < 1 || c.upstream_client.retries > 10) {
    return bad("upstream_client.retries must be 1..10");
  }
  if (c.upstream_client.response_timeout.count() <= 0 ||
      c.upstream_client.connect_timeout.count() <= 0 ||
      c.upstream_client.read_timeout.count() <= 0) {
    return bad("upstream_client timeouts must be > 0");
  }
  return {};
}

}  // namespace

Result<AgentConfig> parse_config(const json& doc) {
  AgentConfig c;
  if (auto s =
          check_keys(doc,
                     {"listen", "data_dir", "upstream", "registries", "allow_unlisted_registries",
                      "tls", "cache", "upstream_client", "log", "drain_timeout"},
                     "config");
      !s) {
    return s.error();
  }
  Status s = read_string(doc, "listen", "config", c.listen);
  if (s) s = read_string(doc, "data_dir", "config", c.data_dir);
  if (s) s = read_string(doc, "upstream", "config", c.upstream);
  if (s) s = read_bool(doc, "allow_unlisted_registries", "config", c.allow_unlisted_registries);
  if (s) s = read_duration(doc, "drain_timeout", "config", c.drain_timeout);
  if (s && doc.contains("tls")) s = parse_tls(doc["tls"], c.tls);
  if (s && doc.contains("cache")) s = parse_cache(doc["cache"], c.cache);
  if (s && doc.contains("upstream_client")) {
    s = parse_upstream_client(doc["upstream_client"], c.upstream_client);
  }
  if (s && doc.contains("log")) s = parse_log(doc["log"], c.log);
  if (!s) return s.error();
  if (doc.contains("registries")) {
    auto regs = Registries::from_json(doc["registries"]);
    if (!regs) return regs.error();
    c.registries = std::move(*regs);
  }
  return c;
}

Result<AgentConfig> load_config(const std::string& file, const Overrides& o) {
  json doc = json::object();
  if (!file.empty()) {
    auto loaded = load_json_file(file);
    if (!loaded) return loaded.error();
    doc = std::move(*loaded);
  }
  auto parsed = parse_config(doc);
  if (!parsed) {
    return Error(Errc::kConfigInvalid, (file.empty() ? "" : file + ": ") + parsed.error().what());
  }
  AgentConfig c = std::move(*parsed);
  if (!o.listen.empty()) c.listen = o.listen;
  if (!o.data_dir.empty()) c.data_dir = o.data_dir;
  if (!o.upstream.empty()) c.upstream = o.upstream;
  if (!o.log_level.empty()) c.log.level = o.log_level;
  for (const auto& spec : o.registries) {
    if (auto s = c.registries.set_url(spec); !s) return s.error();
  }
  if (auto s = validate(c); !s) return s.error();
  return c;
}

}  // namespace layerswarm::agent
