// The agent's membership of a closed site (docs/security.md): it makes a key of its own, asks
// the supernode (with the cluster token, over https) for a member certificate for it, and hands
// the certificate to the swarm, whose SSL torrents exchange pieces with members only. The
// certificate is renewed when a third of its lifetime is left; a supernode that cannot be
// reached is asked again every 30 s (meanwhile blobs come over HTTP). An open site (the
// supernode issues no certificates) keeps the plaintext swarm.
//
// Threading: the io_context thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/supernode_link.h"
#include "common/async.h"
#include "common/p2p/swarm.h"

namespace layerswarm::agent {

struct Membership {
  p2p::Identity identity;
  std::int64_t expires = 0;  // unix seconds
  std::string fingerprint;   // of the certificate, for logs
};

// One certificate request. nullopt: an open site. Errors: transport errors, kDenied (the
// supernode refused the token), kBadUpstreamResponse (an answer that is not a certificate for
// this key signed by the site CA the answer names; the answer came over the link the agent
// verified with supernode_ca_file).
Task<Result<std::optional<Membership>>> request_membership(SupernodeLink& link);

class MembershipKeeper {
 public:
  MembershipKeeper(asio::any_io_executor executor, SupernodeLink& link, p2p::Swarm& swarm);
  ~MembershipKeeper();
  // Takes the outcome of a first request made before the swarm started.
  void start(std::optional<Membership> current, bool open_site);

 private:
  Task<void> run(std::shared_ptr<bool> alive);

  asio::any_io_executor executor_;
  SupernodeLink& link_;
  p2p::Swarm& swarm_;
  std::optional<Membership> current_;
  std::shared_ptr<asio::steady_timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::agent
