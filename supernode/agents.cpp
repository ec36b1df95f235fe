#include "supernode/agents.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/reference.h"

namespace layerswarm::supernode {
namespace {

bool safe_text(std::string_view s, std::size_t max) {
  if (s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
           c == ':' || c == '+';
  });
}

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

bool valid_zone(std::string_view zone) { return safe_text(zone, 64); }

Result<AgentRecord> parse_registration(std::string_view query, std::string_view remote_ip,
                                       std::chrono::system_clock::time_point now) {
  AgentRecord r;
  std::uint64_t port = 0;
  for (int i = 0; i < 64 && !query.empty(); ++i) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = pair.substr(0, eq);
    const auto value = percent_decode(pair.substr(eq + 1));
    if (!value)
      return Error(Errc::kNameInvalid, "agent registration: bad escape in " + std::string(key));
    auto bad = [&] {
      return Error(Errc::kNameInvalid, "agent registration: bad " + std::string(key));
    };
    if (key == "id") {
      if (!safe_text(*value, 255) || value->empty()) return bad();
      r.id = *value;
    } else if (key == "zone") {
      if (!valid_zone(*value)) return bad();
      r.zone = *value;
    } else if (key == "version") {
      if (!safe_text(*value, 32)) return bad();
      r.version = *value;
    } else if (key == "writable") {
      if (*value != "0" && *value != "1") return bad();
      r.writable = *value == "1";
    } else if (std::uint64_t* field = key == "port"                ? &port
                                      : key == "cache_bytes"       ? &r.cache_bytes
                                      : key == "cache_capacity"    ? &r.cache_capacity
                                      : key == "downloads"         ? &r.downloads
                                      : key == "from_cache"        ? &r.from_cache
                                      : key == "from_swarm"        ? &r.from_swarm
                                      : key == "from_supernode"    ? &r.from_supernode
                                      : key == "from_upstream"     ? &r.from_upstream
                                      : key == "errors"            ? &r.errors
                                      : key == "digest_mismatches" ? &r.digest_mismatches
                                      : key == "upstreams_offline" ? &r.upstreams_offline
                                                                   : nullptr) {
      auto n = number(*value);
      if (!n) return bad();
      *field = *n;
    }
  }
  if (r.id.empty()) return Error(Errc::kNameInvalid, "agent registration: no id");
  if (port == 0 || port > 65535) return Error(Errc::kNameInvalid, "agent registration: bad port");
  const std::string ip(remote_ip);
  r.address =
      (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
  r.first_seen = r.last_seen = now;
  return r;
}

void AgentRegistry::forget_gone(std::chrono::system_clock::time_point now) {
  std::erase_if(agents_, [&](const auto& e) { return now - e.second.last_seen > kGone; });
}

Status AgentRegistry::note(AgentRecord record) {
  auto it = agents_.find(record.id);
  if (it != agents_.end()) {
    record.first_seen = it->second.first_seen;
    it->second = std::move(record);
    return {};
  }
  if (agents_.size() >= kMaxAgents) forget_gone(record.last_seen);
  if (agents_.size() >= kMaxAgents) return Error(Errc::kBusy, "too many agents registered");
  const std::string id = record.id;
  agents_.emplace(id, std::move(record));
  return {};
}

std::vector<AgentRecord> AgentRegistry::list(std::chrono::system_clock::time_point now) const {
  std::vector<AgentRecord> out;
  for (const auto& [id, r] : agents_) {
    if (now - r.last_seen <= kGone) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const AgentRecord& a, const AgentRecord& b) {
    return std::tie(a.zone, a.id) < std::tie(b.zone, b.id);
  });
  return out;
}

std::size_t AgentRegistry::live(std::chrono::system_clock::time_point now) const {
  return static_cast<std::size_t>(std::count_if(agents_.begin(), agents_.end(), [&](const auto& e) {
    return now - e.second.last_seen <= kGone;
  }));
}

std::string AgentRegistry::to_json(std::chrono::system_clock::time_point now) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : list(now)) {
    out.push_back({{"id", r.id},
                   {"address", r.address},
                   {"zone", r.zone},
                   {"version", r.version},
                   {"cache_bytes", r.cache_bytes},
                   {"cache_capacity", r.cache_capacity},
                   {"downloads", r.downloads},
                   {"from_cache", r.from_cache},
                   {"from_swarm", r.from_swarm},
                   {"from_supernode", r.from_supernode},
                   {"from_upstream", r.from_upstream},
                   {"errors", r.errors},
                   {"digest_mismatches", r.digest_mismatches},
                   {"upstreams_offline", r.upstreams_offline},
                   {"writable", r.writable},
                   {"first_seen", unix_ms(r.first_seen)},
                   {"last_seen", unix_ms(r.last_seen)}});
  }
  return out.dump();
}

}  // namespace layerswarm::supernode
