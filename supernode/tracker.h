// The supernode's BitTorrent tracker: who is in each chunk torrent's swarm, and which peers to
// hand an agent (announce.h chooses). Answers are bencoded with libtorrent's own encoder
// (compact IPv4 "peers", IPv6 "peers6", or "failure reason"). Only requests carrying the
// cluster token are admitted.
//
// Intervals (docs/architecture.md "Tracker"): a downloading peer is told to announce every
// `leecher_interval` (short: a node that joins late learns of new seeds quickly), a seed every
// `seed_interval` (long: a seed only needs to stay listed). Both are at least libtorrent's
// minimum (p2p::kMinAnnounceIntervalSeconds), so peers announce at exactly the interval given,
// and a peer is forgotten `kExpiryFactor` intervals plus `kExpiryGrace` after its last announce.
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
  std::chrono::seconds leecher_interval{5};
  std::chrono::seconds seed_interval{60};
  std::size_t max_peers_per_swarm = 5000;
  std::size_t max_swarms = 100'000;
  // A closed site (docs/security.md): only peers that proved membership with their
  // certificate may announce; the token in the query no longer admits anyone.
  bool members_only = false;
};

// A peer missing two announces in a row (plus slack for a busy node) is gone.
inline constexpr int kExpiryFactor = 2;
inline constexpr std::chrono::seconds kExpiryGrace{10};

class Tracker {
 public:
  Tracker(std::string token, TrackerOptions options);

  // Answers one announce (the request's query string) from peer address `remote_ip` at `now`.
  // `member`: the peer proved membership with its certificate (a closed site's mutual TLS);
  // otherwise the query must carry the cluster token. Always a bencoded body: peers, or a
  // "failure reason".
  std::string announce(std::string_view query, std::string_view remote_ip,
                       std::chrono::steady_clock::time_point now, bool member = false);

  std::size_t swarms() const { return swarms_.size(); }
  std::uint64_t announces() const { return announces_; }
  // {seeds, leechers} of a swarm.
  std::pair<int, int> counts(const std::string& info_hash) const;

 private:
  void expire(std::chrono::steady_clock::time_point now);

  std::string token_;
  TrackerOptions options_;
  // info_hash -> (address bytes + port) -> peer
  std::map<std::string, std::map<std::string, PeerInfo>> swarms_;
  std::chrono::steady_clock::time_point last_expiry_{};
  std::uint64_t announces_ = 0;
};

}  // namespace layerswarm::supernode
