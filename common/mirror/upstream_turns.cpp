#include "common/mirror/upstream_turns.h"

#include <algorithm>
#include <tuple>

namespace layerswarm::mirror {

struct UpstreamTurns::State {
  explicit State(TurnOptions o) : options(o) {}

  bool leads(const Entry& entry, SteadyTime now) const {
    if (!options.in_order) return true;
    const Entry* first = nullptr;
    for (const Entry& e : entries) {
      if (e.registry != entry.registry) continue;
      if (!first || std::tie(e.remaining, e.seq) < std::tie(first->remaining, first->seq)) {
        first = &e;
      }
    }
    if (first == &entry) return true;
    // The first download's upstream is not delivering: the link is free for the others.
    return first && now - first->last_read >= options.idle_lead;
  }

  TurnOptions options;
  std::list<Entry> entries;
  std::uint64_t next_seq = 0;
  Notifier changed;  // an entry left: another may lead now
};

UpstreamTurns::UpstreamTurns(TurnOptions options) : state_(std::make_shared<State>(options)) {}

UpstreamTurns::Turn::Turn(UpstreamTurns& turns, std::string registry) : state_(turns.state_) {
  Entry e;
  e.registry = std::move(registry);
  e.seq = state_->next_seq++;
  e.last_read = std::chrono::steady_clock::now();
  entry_ = state_->entries.insert(state_->entries.end(), std::move(e));
}

UpstreamTurns::Turn::~Turn() {
  state_->entries.erase(entry_);
  state_->changed.notify_all();
}

bool UpstreamTurns::leads(const Turn& turn) const {
  return state_->leads(*turn.entry_, std::chrono::steady_clock::now());
}

std::size_t UpstreamTurns::size() const { return state_->entries.size(); }

Task<std::size_t> UpstreamTurns::allowance(Turn& turn, std::uint64_t remaining, std::size_t want) {
  std::shared_ptr<State> s = turn.state_;
  Entry& e = *turn.entry_;
  e.remaining = remaining;
  const std::size_t trickle = std::max<std::size_t>(1, std::min(want, s->options.trickle_bytes));
  // Bounded: each pass ends at the next trickle at the latest.
  for (int i = 0; i < 1000; ++i) {
    const SteadyTime now = std::chrono::steady_clock::now();
    if (s->leads(e, now)) {
      e.last_read = now;
      co_return want;
    }
    const SteadyTime due = e.last_trickle + s->options.trickle_interval;
    if (now >= due) {
      e.last_trickle = e.last_read = now;
      co_return trickle;
    }
    // Woken when a download leaves; otherwise at the next trickle, or when the first one may
    // have gone idle.
    co_await s->changed.wait_until(std::min(due, now + s->options.idle_lead));
  }
  e.last_trickle = e.last_read = std::chrono::steady_clock::now();
  co_return trickle;
}

}  // namespace layerswarm::mirror
