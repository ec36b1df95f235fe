// The agents a supernode knows (docs/operations.md "Agents"): each agent registers every 30 s
// with the cluster token (POST /api/v1/agents?id=..&port=..&zone=..&version=..&cache_bytes=..
// &cache_capacity=..&downloads=..[&from_cache=..&from_swarm=..&from_supernode=..
// &from_upstream=..&errors=..&digest_mismatches=..&upstreams_offline=..&writable=0|1]); the
// supernode keeps the last registration of each, with
// the address it came from and when. GET /api/v1/agents lists them; the status page, preheat
// and the layerswarm_agents metric use the list.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace layerswarm::supernode {

struct AgentRecord {
  std::string id;       // the agent's own name (host:port), unique per agent
  std::string address;  // ip:port its registry mirror listens on, as the supernode sees it
  std::string zone;
  std::string version;
  std::uint64_t cache_bytes = 0;
  std::uint64_t cache_capacity = 0;
  std::uint64_t downloads = 0;  // in flight
  // Health and traffic, as the agent last reported them (absent from older agents: 0/true).
  std::uint64_t from_cache = 0, from_swarm = 0, from_supernode = 0, from_upstream = 0;  // bytes
  std::uint64_t errors = 0;             // failed responses since the agent started
  std::uint64_t digest_mismatches = 0;  // downloads that did not hash to their digest
  std::uint64_t upstreams_offline = 0;  // registries the agent finds unreachable now
  bool writable = true;                 // false: its cache is read-only (full disk)
  std::chrono::system_clock::time_point first_seen;
  std::chrono::system_clock::time_point last_seen;
};

// A zone label: at most 64 of [A-Za-z0-9.-_:+] (registrations, copy rules).
bool valid_zone(std::string_view zone);

// A registration's query string from `remote_ip`. Errors: kNameInvalid naming the field.
Result<AgentRecord> parse_registration(std::string_view query, std::string_view remote_ip,
                                       std::chrono::system_clock::time_point now);

class AgentRegistry {
 public:
  // An agent silent for this long is gone (it registers every 30 s).
  static constexpr std::chrono::minutes kGone{2};
  static constexpr std::size_t kMaxAgents = 100'000;

  // Errors: kBusy (the table is full of live agents).
  Status note(AgentRecord record);
  // Live agents, by zone then id.
  std::vector<AgentRecord> list(std::chrono::system_clock::time_point now) const;
  std::size_t live(std::chrono::system_clock::time_point now) const;
  // As JSON: [{"id", "address", "zone", "version", "cache_bytes", "cache_capacity",
  // "downloads", "from_cache", "from_swarm", "from_supernode", "from_upstream", "errors",
  // "digest_mismatches", "upstreams_offline", "writable", "first_seen", "last_seen" (Unix ms)}].
  std::string to_json(std::chrono::system_clock::time_point now) const;

 private:
  void forget_gone(std::chrono::system_clock::time_point now);
  std::map<std::string, AgentRecord> agents_;
};

}  // namespace layerswarm::supernode
