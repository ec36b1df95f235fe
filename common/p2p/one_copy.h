// One copy in flight (docs/architecture.md "One copy of a block in flight"): a libtorrent torrent
// plugin for the chunk torrents a node downloads. libtorrent's end game lets every connection
// whose request queue ran dry ask for a block that another connection already has in flight.
// In a rollout the nodes trade at the frontier of what the site holds, so a chunk's last pieces
// are often in flight from one peer while others hold them too: every idle connection then keeps
// a duplicate of a block in flight, and the copy that loses still crosses the link (a cancel
// arrives after the block was sent). At 20 Mbit/s that was 8.3% of what the nodes received,
// on the links that bound the rollout. Here such a request is held back while the block's
// connection is delivering; it goes out (one more copy) when that connection has delivered
// nothing for `quiet`, chokes us, rejects the request or leaves. A node pulling alone from
// seeds holds them back too: its downlink is what bounds it, and a copy takes the place of a
// block it still lacks.
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
#include <unordered_map>
#include <vector>

namespace layerswarm::p2p {

// A session's count of requests held back and sent late (read from any thread).
struct OneCopyStats {
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> released{0};
};

// One torrent's blocks in flight, by connection: the policy, apart from libtorrent. A block is
// (piece, offset in the piece); a connection is any stable identity of it.
class InFlightBook {
 public:
  using Clock = std::chrono::steady_clock;
  using Conn = const void*;
  struct Block {
    int piece = 0;
    int start = 0;
    int length = 0;
  };
  // A held request that is to go out now, on `conn`.
  struct Send {
    Conn conn;
    Block block;
  };

  InFlightBook(std::shared_ptr<OneCopyStats> stats, std::chrono::milliseconds quiet);

  // `conn` is about to request `block`: true to send the request, false to hold it back
  // (another connection has the block in flight and delivered within `quiet`).
  bool admit(const Block& block, Conn conn, Clock::time_point now);
  // `conn` received `block`: its copy, and every held request for it, are done.
  void received(const Block& block, Conn conn, Clock::time_point now);
  // `conn`'s request for `block` ended without the block (rejected): a held request takes over.
  std::vector<Send> ended(const Block& block, Conn conn, Clock::time_point now);
  // `conn` left or choked us: its requests end, held requests for its blocks take over, and
  // its own held requests are forgotten.
  std::vector<Send> drop(Conn conn, Clock::time_point now);
  // Held requests whose block's connection has delivered nothing for `quiet`: one each goes out.
  std::vector<Send> due(Clock::time_point now);

  std::size_t in_flight() const { return flights_.size(); }

 private:
  struct Flight {
    Block block;
    Conn owner;
    Clock::time_point since;
    std::vector<Conn> waiting;
  };
  static std::uint64_t key(const Block& b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(b.piece)) << 32) |
           static_cast<std::uint32_t>(b.start);
  }
  bool quiet(const Flight& f, Clock::time_point now) const;
  // The next waiter of `f` takes it over (returned), or it ends when nobody waits.
  bool hand_over(Flight& f, Clock::time_point now, std::vector<Send>& out);

  std::shared_ptr<OneCopyStats> stats_;
  std::chrono::milliseconds quiet_;
  std::unordered_map<std::uint64_t, Flight> flights_;
  std::unordered_map<Conn, Clock::time_point> last_block_;  // a connection's last delivery
};

std::function<std::shared_ptr<lt::torrent_plugin>(lt::torrent_handle const&, lt::client_data_t)>
one_copy_in_flight(std::shared_ptr<OneCopyStats> stats, std::chrono::milliseconds quiet);

}  // namespace layerswarm::p2p
