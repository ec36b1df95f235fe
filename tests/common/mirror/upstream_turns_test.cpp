// UpstreamTurns on a real io_context: downloads from one registry take turns, shortest remaining
// first; the others trickle, take over when the first leaves, and read freely while it is idle.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <optional>

#include "common/mirror/upstream_turns.h"

using namespace layerswarm;
using namespace layerswarm::mirror;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kWant = 1 << 20;
constexpr std::size_t kTrickle = 16 << 10;

// Runs `ioc` until `done()` or 10 s.
void run_until(asio::io_context& ioc, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (int i = 0; i < 100'000 && !done() && std::chrono::steady_clock::now() < deadline; ++i) {
    ioc.restart();  // run_for() stops the context whenever it runs out of work
    ioc.run_for(5ms);
  }
}

Task<void> allowance(UpstreamTurns& turns, UpstreamTurns::Turn& turn, std::uint64_t remaining,
                     std::optional<std::size_t>& out) {
  out = co_await turns.allowance(turn, remaining, kWant);
}

// Asks for an allowance; `out` is set when it is granted.
void ask(asio::io_context& ioc, UpstreamTurns& turns, UpstreamTurns::Turn& turn,
         std::uint64_t remaining, std::optional<std::size_t>& out) {
  out.reset();
  asio::co_spawn(ioc, allowance(turns, turn, remaining, out), asio::detached);
}

std::size_t granted(asio::io_context& ioc, UpstreamTurns& turns, UpstreamTurns::Turn& turn,
                    std::uint64_t remaining) {
  std::optional<std::size_t> out;
  ask(ioc, turns, turn, remaining, out);
  run_until(ioc, [&] { return out.has_value(); });
  REQUIRE(out);
  return *out;
}

TurnOptions in_order(std::chrono::milliseconds trickle, std::chrono::milliseconds idle) {
  TurnOptions o;
  o.in_order = true;
  o.trickle_bytes = kTrickle;
  o.trickle_interval = trickle;
  o.idle_lead = idle;
  return o;
}

}  // namespace

TEST_CASE("downloads from one registry take turns, fewest bytes left first", "[unit][turns]") {
  asio::io_context ioc;
  UpstreamTurns turns(in_order(200ms, 10s));
  UpstreamTurns::Turn a(turns, "r");
  UpstreamTurns::Turn b(turns, "r");
  UpstreamTurns::Turn other(turns, "elsewhere");

  // a has fewer bytes left than b (whose size is not known yet): a reads freely.
  CHECK(granted(ioc, turns, a, 1000) == kWant);
  CHECK(turns.leads(a));
  CHECK_FALSE(turns.leads(b));
  // Another registry's link is another link.
  CHECK(granted(ioc, turns, other, 1'000'000) == kWant);

  // b trickles: once at once, then once per interval.
  const auto before = std::chrono::steady_clock::now();
  CHECK(granted(ioc, turns, b, 5000) == kTrickle);
  CHECK(granted(ioc, turns, b, 5000) == kTrickle);
  CHECK(std::chrono::steady_clock::now() - before >= 200ms);

  // b now has fewer bytes left: it leads, a trickles.
  CHECK(granted(ioc, turns, b, 500) == kWant);
  CHECK(turns.leads(b));
  CHECK(granted(ioc, turns, a, 1000) == kTrickle);
}

TEST_CASE("a waiting download reads as soon as the first one leaves", "[unit][turns]") {
  asio::io_context ioc;
  UpstreamTurns turns(in_order(1h, 1h));  // no trickle, no idle hand-over within the test
  std::optional<UpstreamTurns::Turn> first;
  first.emplace(turns, "r");
  UpstreamTurns::Turn second(turns, "r");
  CHECK(granted(ioc, turns, *first, 10) == kWant);
  CHECK(granted(ioc, turns, second, 20) == kTrickle);  // its first trickle is due at once

  std::optional<std::size_t> out;
  ask(ioc, turns, second, 20, out);
  for (int i = 0; i < 20; ++i) {
    ioc.restart();
    ioc.run_for(5ms);
  }
  CHECK_FALSE(out);
  first.reset();
  run_until(ioc, [&] { return out.has_value(); });
  REQUIRE(out);
  CHECK(*out == kWant);
  CHECK(turns.size() == 1);
}

TEST_CASE("while the first download gets nothing, the others read freely", "[unit][turns]") {
  asio::io_context ioc;
  UpstreamTurns turns(in_order(1h, 300ms));
  UpstreamTurns::Turn first(turns, "r");
  UpstreamTurns::Turn second(turns, "r");
  const auto before = std::chrono::steady_clock::now();
  CHECK(granted(ioc, turns, first, 10) == kWant);
  CHECK(granted(ioc, turns, second, 20) == kTrickle);
  // `first` asks for nothing more (its upstream stalled): after idle_lead `second` goes on.
  CHECK(granted(ioc, turns, second, 20) == kWant);
  CHECK(std::chrono::steady_clock::now() - before >= 300ms);
  // As soon as `first` reads again it leads again.
  CHECK(granted(ioc, turns, first, 5) == kWant);
  CHECK_FALSE(turns.leads(second));
}

TEST_CASE("without in_order every download reads freely", "[unit][turns]") {
  asio::io_context ioc;
  UpstreamTurns turns(TurnOptions{});
  UpstreamTurns::Turn a(turns, "r");
  UpstreamTurns::Turn b(turns, "r");
  CHECK(granted(ioc, turns, a, 10) == kWant);
  CHECK(granted(ioc, turns, b, 20) == kWant);
  CHECK(granted(ioc, turns, b, 20) == kWant);
}
