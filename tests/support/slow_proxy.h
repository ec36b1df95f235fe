// A TCP proxy for tests that limits the upstream->client byte rate, so a transfer is reliably
// still in flight while a test acts, and that can vanish (stop()) like a failed upstream.
// Runs its own io_context on its own thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace layerswarm::test {

class SlowProxy {
 public:
  // Forwards 127.0.0.1:<ephemeral> to `upstream` ("host:port"); `bytes_per_second` 0 = no limit.
  // With `stall_after` > 0, each connection stops forwarding upstream->client bytes after that
  // many (the connection stays open, silent).
  SlowProxy(const std::string& upstream, std::size_t bytes_per_second, std::size_t stall_after = 0);
  ~SlowProxy();
  const std::string& address() const;
  // Bytes forwarded from the upstream to clients so far (all connections).
  std::uint64_t bytes_forwarded() const;
  // Closes the listener and every connection.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace layerswarm::test
