// The supernode's BitTorrent tracker: who is in each chunk torrent's swarm, and which peers to
// hand an agent (announce.h chooses). Answers are bencoded with libtorrent's own encoder
// (compact IPv4 "peers", IPv6 "peers6", or "failure reason"). Only requests carrying the
// cluster token are admitted. Peers not heard from for three intervals are forgotten.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "supernode/announce.h"

namespace layerswarm::supernode {

struct TrackerOptions {
  std::chrono::seconds interval{15};
  std::chrono::seconds min_interval{5};
  std::size_t max_peers_per_swarm = 5000;
  std::size_t max_swarms = 100'000;
};

class Tracker {
 public:
  Tracker(std::string token, TrackerOptions options);

  // Answers one announce (the request's query string) from peer address `remote_ip` at `now`.
  // Always a bencoded body: peers, or a "failure reason".
  std::string announce(std::string_view query, std::string_view remote_ip,
                       std::chrono::steady_clock::time_point now);

  std::size_t swarms() const { return swarms_.size(); }
  // {seeds, leechers} of a swarm.
  std::pair<int, int> counts(const std::string& info_hash) const;

 private:
  void expire(std::chrono::steady_clock::time_point now);

  std::string token_;
  TrackerOptions options_;
  // info_hash -> (address bytes + port) -> peer
  std::map<std::string, std::map<std::string, PeerInfo>> swarms_;
  std::chrono::steady_clock::time_point last_expiry_{};
};

}  // namespace layerswarm::supernode
