// Pulls the supernode asks an agent for (preheat; docs/operations.md "Preheat"): the agent's
// front handler takes, with the cluster token,
//   POST /api/v1/pull?job=ID&image=REF[&platform=os/arch]...  -> 202, the pull starts
//   GET  /api/v1/pull/ID                                      -> its progress as JSON
// and passes every other request to the mirror. A pull resolves the image through the node
// (manifests from the supernode) and brings each blob into the cache through the swarm, like a
// client's pull would; nothing is sent to a client.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/http_server.h"
#include "common/log.h"
#include "common/mirror/node.h"
#include "common/mirror/options.h"

namespace layerswarm::agent {

struct PullProgress {
  std::string image;
  std::string state = "resolving";  // resolving | pulling | done | failed
  std::string error;
  std::uint64_t blobs_total = 0;
  std::uint64_t blobs_done = 0;
  std::uint64_t bytes_total = 0;
  std::uint64_t bytes_done = 0;
};

class AgentFront final : public HttpHandler {
 public:
  // At most this many pulls are remembered (the oldest finished ones go first).
  static constexpr std::size_t kMaxJobs = 64;

  AgentFront(asio::any_io_executor executor, mirror::MirrorNode& node, std::string token);
  ~AgentFront();
  Task<void> handle(HttpRequest request, ResponseWriter& out) override;

 private:
  Task<void> start_pull(const HttpRequest& request, ResponseWriter& out, RequestLog& log);
  Task<void> pull(std::string job, mirror::PinSpec image);

  asio::any_io_executor executor_;
  mirror::MirrorNode& node_;
  std::string token_;
  std::map<std::string, PullProgress> jobs_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::agent
