#include "common/mirror/options.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "common/json_config.h"
#include "common/url.h"

namespace layerswarm::mirror {

using nlohmann::json;

namespace {

bool is_platform(const std::string& p) {
  // os/arch or os/arch/variant, each part [a-z0-9._-]+
  int parts = 1;
  if (p.empty() || p.size() > 64 || p.front() == '/' || p.back() == '/') return false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '/') {
      if (p[i - 1] == '/') return false;
      ++parts;
    } else if (!(std::islower(static_cast<unsigned char>(c)) ||
                 std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return parts == 2 || parts == 3;
}

Status parse_pins(const json& j, const std::string& where, std::vector<PinSpec>& out) {
  if (!j.is_array()) return Error(Errc::kConfigInvalid, where + ": expected a list");
  if (j.size() > 1000) return Error(Errc::kConfigInvalid, where + ": at most 1000 images");
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& e = j[i];
    PinSpec pin;
    std::string image;
    if (e.is_string()) {
      image = e.get<std::string>();
    } else if (e.is_object()) {
      if (auto s = check_keys(e, {"image", "platforms"}, at); !s) return s;
      if (!e.contains("image") || !e["image"].is_string()) {
        return Error(Errc::kConfigInvalid, at + ".image: expected an image reference");
      }
      image = e["image"].get<std::string>();
      if (e.contains("platforms")) {
        if (!e["platforms"].is_array()) {
          return Error(Errc::kConfigInvalid, at + ".platforms: expected a list");
        }
        for (const auto& p : e["platforms"]) {
          if (!p.is_string() || !is_platform(p.get<std::string>())) {
            return Error(Errc::kConfigInvalid,
                         at + ".platforms: expected \"os/arch\" or \"os/arch/variant\"");
          }
          pin.platforms.push_back(p.get<std::string>());
        }
      }
    } else {
      return Error(Errc::kConfigInvalid, at + ": expected an image reference or an object");
    }
    auto ref = parse_image_reference(image);
    if (!ref) return Error(Errc::kConfigInvalid, at + ": " + ref.error().what());
    pin.image = std::move(*ref);
    out.push_back(std::move(pin));
  }
  return {};
}

Status parse_cache(const json& j, MirrorOptions::Cache& c) {
  if (auto s = check_keys(j,
                          {"ttl", "tag_ttl", "max_stale", "sweep_interval", "repository_check_ttl",
                           "max_size", "evict_to", "scrub_interval", "scrub_rate",
                           "space_check_interval", "pins", "pin_refresh"},
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
  if (s) s = read_duration(j, "pin_refresh", "cache", c.pin_refresh);
  if (s && j.contains("pins")) s = parse_pins(j["pins"], "cache.pins", c.pins);
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
  if (auto s = check_keys(
          j, {"connect_timeout", "read_timeout", "response_timeout", "retries", "blob_order"},
          path);
      !s) {
    return s;
  }
  Status s = read_duration(j, "connect_timeout", path, u.connect_timeout);
  if (s) s = read_duration(j, "read_timeout", path, u.read_timeout);
  if (s) s = read_duration(j, "response_timeout", path, u.response_timeout);
  if (s) s = read_uint(j, "retries", path, u.retries);
  if (s) s = read_string(j, "blob_order", path, u.blob_order);
  if (s && u.blob_order != "smallest-first" && u.blob_order != "shared" && !u.blob_order.empty()) {
    s = Error(Errc::kConfigInvalid,
              "upstream_client.blob_order: \"smallest-first\" or \"shared\", not \"" +
                  u.blob_order + "\"");
  }
  return s;
}

}  // namespace

Status parse_pin_list(const nlohmann::json& list, const std::string& where,
                      std::vector<PinSpec>& out) {
  return parse_pins(list, where, out);
}

bool valid_platform(const std::string& platform) { return is_platform(platform); }

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
  if (c.cache.pin_refresh.count() < 1000) return bad("cache.pin_refresh must be at least 1s");
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
