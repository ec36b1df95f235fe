// The first seed's ledger (docs/architecture.md "The first seed shares once"): a libtorrent
// torrent plugin for the supernode's chunk torrents. The supernode's uplink carries every byte
// of a rollout once; a second copy of a piece it sends while first copies of other pieces are
// still owed delays the whole site. So while any of its pieces has never been given to a peer,
// a request for a piece it already gave another peer within `hold` is refused (a BEP 6 reject)
// and the requester choked; the torrent's upload slot goes to the next interested peer. The
// holder passes the piece on. Once every piece went out once, or `hold` after a piece went out
// (its holder may have left), requests are served again.
//
// Only common/p2p/swarm.cpp and its unit test include this header (libtorrent's plugin
// interface is heavy).
#pragma once

#include <libtorrent/extensions.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace layerswarm::p2p {

// Pieces of a session's first-seed torrents never given to any peer. Touched only from
// libtorrent's network thread.
struct FirstSeedLedger {
  std::int64_t owed = 0;
  std::atomic<std::uint64_t> refused{0};  // requests refused (read from other threads)
};

// One torrent's pieces as the first seed gave them: the policy, apart from libtorrent.
class PieceBook {
 public:
  using Clock = std::chrono::steady_clock;
  PieceBook(std::shared_ptr<FirstSeedLedger> ledger, int pieces, std::chrono::milliseconds hold);
  ~PieceBook();
  PieceBook(const PieceBook&) = delete;
  PieceBook& operator=(const PieceBook&) = delete;

  // Whether `requester` (any identity of a connection) is refused `piece` now; the first
  // request of a piece is never refused and records who got it.
  bool refuse(int piece, const void* requester, Clock::time_point now);

 private:
  struct Given {
    std::optional<Clock::time_point> at;
    const void* to = nullptr;
  };
  std::shared_ptr<FirstSeedLedger> ledger_;
  std::vector<Given> given_;
  std::chrono::milliseconds hold_;
};

std::function<std::shared_ptr<lt::torrent_plugin>(lt::torrent_handle const&, lt::client_data_t)>
first_seed_filter(std::shared_ptr<FirstSeedLedger> ledger, int pieces,
                  std::chrono::milliseconds hold);

}  // namespace layerswarm::p2p
