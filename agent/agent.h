// The agent: the node's registry mirror. Wires the store, the upstream registries, the blob
// fetcher, the manifest and blob services and the HTTP listeners; runs the TTL sweep; shuts
// down by draining.
//
// Threading: create, start and shut down on the thread that runs `ioc` (one thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/config.h"
#include "common/async.h"
#include "common/clock.h"
#include "common/mirror/counters.h"

namespace boost::asio {
class io_context;
}

namespace layerswarm::agent {

class Agent {
 public:
  // Opens the store and binds the listeners. Errors: kConfigInvalid, kStorage, socket errors.
  static Result<std::unique_ptr<Agent>> create(const AgentConfig& config, asio::io_context& ioc,
                                               const Clock& clock);
  ~Agent();

  // The bound listener addresses, plain first ("127.0.0.1:65001").
  const std::vector<std::string>& endpoints() const;
  // The metrics listener's address (metrics_listen), or "".
  const std::string& metrics_endpoint() const;
  // Starts accepting and the periodic TTL sweep.
  void start();
  // Stops accepting, lets requests in progress finish (config.drain_timeout), closes the rest.
  Task<void> shutdown();
  // Ends a shutdown() in progress now (a second SIGTERM).
  void cut_shutdown();
  const mirror::Counters& counters() const;
  // The BitTorrent port, 0 without a swarm.
  std::uint16_t p2p_port() const;

  struct Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace layerswarm::agent
