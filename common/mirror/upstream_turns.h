// Which of a node's downloads from one upstream registry read now (docs/architecture.md
// "Upstream downloads take turns").
//
// Downloads from the same registry share the one link to it. Sharing it evenly (what TCP does
// on its own) finishes them all at about the same time, at the end: a supernode fetching six
// layers at once had no 4 MiB chunk to publish for the first 8 s (27 s at 5 Mbit/s), and the
// last chunk of every layer was published only as its whole download ended, to be spread to
// every node in one burst. Taking turns, the download with the fewest bytes left (shortest
// remaining first; the earlier one on a tie) reads freely and the others read a trickle
// (`trickle_bytes` every `trickle_interval`): their TCP windows close and the link goes to the
// first. Its chunks are published at the link's full rate, and when the last download ends only
// its own last chunk is left to spread. The trickle keeps every download visibly alive: its
// waiting readers (clients, agents long-polling a chunk) see bytes arrive and do not give up.
// A first download that gets no byte for `idle_lead` (its upstream stalled) lets the others
// read freely until it moves again.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "common/async.h"

namespace layerswarm::mirror {

struct TurnOptions {
  bool in_order = false;  // false: every download reads freely
  std::size_t trickle_bytes = 16 << 10;
  std::chrono::milliseconds trickle_interval{1000};
  std::chrono::milliseconds idle_lead{2000};
};

class UpstreamTurns {
 public:
  explicit UpstreamTurns(TurnOptions options);
  UpstreamTurns(const UpstreamTurns&) = delete;
  UpstreamTurns& operator=(const UpstreamTurns&) = delete;

 private:
  struct Entry {
    std::string registry;
    std::uint64_t seq = 0;
    std::uint64_t remaining = ~std::uint64_t{0};  // unknown size: last
    SteadyTime last_read;                         // the last allowance handed out
    SteadyTime last_trickle;
  };
  struct State;

 public:
  // A download's place while it reads from `registry`; leaves on destruction (it may outlive
  // the UpstreamTurns: a download's coroutine is destroyed with the io_context).
  class Turn {
   public:
    Turn(UpstreamTurns& turns, std::string registry);
    ~Turn();
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;

   private:
    friend class UpstreamTurns;
    std::shared_ptr<State> state_;
    std::list<Entry>::iterator entry_;
  };

  // How many bytes (1..want) the download may read now, once it may: at once for the first
  // download of its registry, else a trickle once per interval. `remaining`: its bytes still
  // to come (~0 when unknown).
  Task<std::size_t> allowance(Turn& turn, std::uint64_t remaining, std::size_t want);

  // Whether `turn` reads freely now (tests, logs).
  bool leads(const Turn& turn) const;
  std::size_t size() const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace layerswarm::mirror
