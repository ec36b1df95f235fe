// BitTorrent HTTP tracker announces (BEP 3, 23) as layerswarm uses them: parsing the request
// and choosing peers. Pure functions; safe from any thread. Bencoding lives in tracker.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace layerswarm::supernode {

struct Announce {
  enum class Event { kNone, kStarted, kCompleted, kStopped };
  std::string info_hash;  // 20 raw bytes (a v2 torrent announces its truncated SHA-256)
  std::string peer_id;    // 20 raw bytes
  std::uint16_t port = 0;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t left = 0;
  Event event = Event::kNone;
  int numwant = 50;   // capped at kMaxNumwant
  std::string token;  // the cluster token (in the announce URL: libtorrent cannot add headers)
  std::string zone;   // the agent's zone/rack label, "" when none
};

inline constexpr int kMaxNumwant = 200;

// Parses an announce's query string. Errors: kNameInvalid naming the bad parameter.
Result<Announce> parse_announce(std::string_view query);

struct PeerInfo {
  std::string address;  // raw bytes: 4 (IPv4) or 16 (IPv6)
  std::uint16_t port = 0;
  std::string peer_id;
  std::string zone;
  bool seed = false;  // left == 0
  std::chrono::steady_clock::time_point last_seen;
  // Forgotten after this unless it announces again (set by the tracker from the interval it
  // handed the peer).
  std::chrono::steady_clock::time_point expires;
};

// Up to `n` peers of `swarm` for a requester (never itself): those in its zone first, then
// seeds and complete peers, then the most recently seen.
std::vector<PeerInfo> select_peers(const std::vector<PeerInfo>& swarm, const PeerInfo& requester,
                                   std::size_t n);

}  // namespace layerswarm::supernode
