#include "common/mirror/options.h"

#include <nlohmann/json.hpp>

#include "common/json_config.h"
#include "common/url.h"

namespace layerswarm::mirror {

using nlohmann::json;

namespace {

Status parse_cache(const json& j, MirrorOptions::Cache& c) {
  if (auto s = check_keys(
          j,
          {"ttl", "tag_ttl", "max_stale", "sweep_interval", "repository_check_ttl", "max_size",
           "evict_to", "scrub_interval", "scrub_rate", "space_check_interval"},
          "cache");
      !s) {
    return s;
  }
  Status s = read_duration(j, "ttl", "cache", c.ttl);
  if (s) s = read_duration(j, "tag_ttl", "cache", c.tag_ttl);
  if (s) s = read_duration(j, "max_stale", "cache", c.max_stale);
  if (s) s = read_duration(j, "sweep_interval", "cache", c.sweep_interval);
  if (s) s = read_duration(j, "repository_check_ttl", "cache", c.repository_check);
  if (s) s = read_size(j, "max_size", "cache", c.max_size);
  std::optional<SizeSpec> evict_to;
  if (s) s = read_size(j, "evict_to", "cache", evict_to);
  if (evict_to) c.evict_to = *evict_to;
  if (s) s = read_duration(j, "scrub_interval", "cache", c.scrub_interval);
  if (s) s = read_duration(j, "space_check_interval", "cache", c.space_check_interval);
  std::optional<SizeSpec> rate;
  if (s) s = read_size(j, "scrub_rate", "cache", rate);
  if (rate) {
    if (rate->is_share) return Error(Errc::kConfigInvalid, "cache.scrub_rate: bytes per second");
    c.scrub_rate = rate->bytes;
  }
  return s;
}

Status parse_upstream_client(const json& j, MirrorOptions::UpstreamClient& u) {
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

}  // namespace

Status parse_mirror_options(const json& doc, MirrorOptions& o) {
  Status s = read_string(doc, "upstream", "config", o.upstream);
  if (s) s = read_bool(doc, "allow_unlisted_registries", "config", o.allow_unlisted_registries);
  if (s) s = read_duration(doc, "authorize_ttl", "config", o.authorize_ttl);
  if (s && doc.contains("cache")) s = parse_cache(doc["cache"], o.cache);
  if (s && doc.contains("upstream_client")) {
    s = parse_upstream_client(doc["upstream_client"], o.upstream_client);
  }
  if (!s) return s;
  if (doc.contains("registries")) {
    auto regs = Registries::from_json(doc["registries"]);
    if (!regs) return regs.error();
    o.registries = std::move(*regs);
  }
  return {};
}

Status apply_registry_flags(const std::vector<std::string>& specs, MirrorOptions& o) {
  for (const auto& spec : specs) {
    if (auto s = o.registries.set_url(spec); !s) return s;
  }
  return {};
}

Status validate_mirror_options(const MirrorOptions& c) {
  auto bad = [](const std::string& m) { return Status(Error(Errc::kConfigInvalid, m)); };
  if (c.upstream.find("://") != std::string::npos) {
    if (auto u = Url::parse(c.upstream); !u) return bad("upstream: " + u.error().what());
  } else if (!c.registries.contains(c.upstream)) {
    return bad("upstream '" + c.upstream + "' is neither a URL nor a registries entry");
  }
  if (c.cache.tag_ttl.count() < 0 || c.cache.ttl.count() <= 0) return bad("cache.ttl must be > 0");
  if (c.cache.sweep_interval.count() <= 0) return bad("cache.sweep_interval must be > 0");
  if (c.cache.max_size && !c.cache.max_size->is_share && c.cache.max_size->bytes < (1 << 20)) {
    return bad("cache.max_size must be at least 1 MiB");
  }
  if (c.cache.max_size && !c.cache.evict_to.is_share && !c.cache.max_size->is_share &&
      c.cache.evict_to.bytes > c.cache.max_size->bytes) {
    return bad("cache.evict_to must not exceed cache.max_size");
  }
  if (c.cache.space_check_interval.count() <= 0) {
    return bad("cache.space_check_interval must be > 0");
  }
  if (c.cache.scrub_interval.count() < 0) return bad("cache.scrub_interval must be >= 0");
  if (c.cache.scrub_interval.count() > 0 && c.cache.scrub_rate < (64 << 10)) {
    return bad("cache.scrub_rate must be at least 64KiB (per second)");
  }
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

}  // namespace layerswarm::mirror
