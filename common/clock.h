// Wall-clock time behind a seam, so TTL and staleness logic can be tested with a fake clock
// (STYLE.md 18-19). Timeouts on sockets use asio's steady timers, not this.
#pragma once

#include <chrono>
#include <cstdint>

namespace layerswarm {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Thread-safe.
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
};

// Milliseconds since the Unix epoch: how times are persisted.
inline std::int64_t to_unix_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline TimePoint from_unix_ms(std::int64_t ms) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(ms)));
}

}  // namespace layerswarm
