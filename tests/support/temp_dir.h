// Test helpers: a temporary directory removed at scope end, a settable clock, and waiting on
// conditions with a deadline (never bare sleeps).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "common/clock.h"

namespace layerswarm::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = from_unix_ms(1'700'000'000'000)) : now_(to_unix_ms(start)) {}
  TimePoint now() const override { return from_unix_ms(now_.load()); }
  void advance(std::chrono::milliseconds d) { now_ += d.count(); }

 private:
  std::atomic<std::int64_t> now_;
};

// Polls `condition` every `poll` until it holds or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(20));

// For counts that other processes write after they answered (log lines): waits until
// `count()` reaches `expected` or `timeout` passes, then returns it. Absence (0) is not waited.
int eventually(const std::function<int()>& count, int expected,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

}  // namespace layerswarm::test
