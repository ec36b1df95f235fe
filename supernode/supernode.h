// The supernode: a site's shared mirror (the same cache and upstream client as an agent), which
// answers only members of the cluster (requests carrying the cluster token). It fetches each
// manifest and blob from the upstream once however many agents ask, and resolves tags for
// all of them. The tracker and the swarm come next (docs/architecture.md).
//
// Threading: create, start and shut down on the thread that runs `ioc` (one thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/async.h"
#include "common/clock.h"
#include "common/mirror/counters.h"
#include "supernode/config.h"

namespace boost::asio {
class io_context;
}

namespace layerswarm::supernode {

class Supernode {
 public:
  // Reads the token file, opens the store, binds the listeners. Errors: kConfigInvalid,
  // kStorage, socket errors.
  static Result<std::unique_ptr<Supernode>> create(const SupernodeConfig& config,
                                                   asio::io_context& ioc, const Clock& clock);
  ~Supernode();

  const std::vector<std::string>& endpoints() const;
  // The metrics listener's address (metrics_listen), or "".
  const std::string& metrics_endpoint() const;
  void start();
  Task<void> shutdown();
  void cut_shutdown();
  const mirror::Counters& counters() const;

  struct Impl;

 private:
  explicit Supernode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace layerswarm::supernode
