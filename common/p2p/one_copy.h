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
// seeds holds them back too: its own downlink bounds it, and a copy takes the place of a
// block it still lacks.
//
// libtorrent counts a held request as sent, and with the fast extension it forgets a sent
// request only when the block or a reject arrives (a choke or its own cancel does not end
// it). So every held request ends on the wire: it goes out, or it is cancelled, and every
// node answers a cancel with a reject (reject_cancels below), whether or not it got the
// request. Otherwise a held request stays in its connection's queue for the connection's
// life, and a few of them fill the queue of a connection that delivers slowly: it can ask for
// nothing more (docs/architecture.md "One copy of a block in flight").
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

// A session's count of requests held back, sent late, and cancelled instead (read from any
// thread).
struct OneCopyStats {
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> released{0};
  std::atomic<std::uint64_t> cancelled{0};
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
  // A held request that is to go out now, on `conn`; or, from received() and drop(), one that
  // is to be cancelled on `conn` (libtorrent counts it as sent, see above).
  struct Send {
    Conn conn;
    Block block;
  };
  // What drop() leaves: held requests that go out now on other connections, and the
  // connection's own held requests, to cancel where it is still connected (it choked us).
  struct Dropped {
    std::vector<Send> sends;
    std::vector<Send> cancels;
  };

  InFlightBook(std::shared_ptr<OneCopyStats> stats, std::chrono::milliseconds quiet);

  // `conn` is about to request `block`: true to send the request, false to hold it back
  // (another connection has the block in flight and delivered within `quiet`).
  bool admit(const Block& block, Conn conn, Clock::time_point now);
  // `conn` received `block`: its copy, and every held request for it, are done. Returns the
  // held requests, to cancel.
  std::vector<Send> received(const Block& block, Conn conn, Clock::time_point now);
  // `conn`'s request for `block` ended without the block (rejected): a held request takes over.
  std::vector<Send> ended(const Block& block, Conn conn, Clock::time_point now);
  // `conn` left or choked us: its requests end, held requests for its blocks take over, and
  // its own held requests are forgotten (returned, to cancel).
  Dropped drop(Conn conn, Clock::time_point now);
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

// Every torrent of every node: a cancel is answered with a reject, also when the request never
// arrived (libtorrent ignores those), so that the peer that held it back forgets it. A reject
// for a request that was already answered, or a second one after libtorrent's own, finds
// nothing to end at the peer and is ignored there. Every node of a site runs this code and
// speaks the fast extension (BEP 6), as the first seed's rejects already assume.
std::function<std::shared_ptr<lt::torrent_plugin>(lt::torrent_handle const&, lt::client_data_t)>
reject_cancels();

}  // namespace layerswarm::p2p
