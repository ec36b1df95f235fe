// Preheat (docs/operations.md "Preheat"): POST /api/v1/preheat?image=REF[&platform=os/arch]...
// [&zone=Z | &agents=ID,ID... ][&share=PERCENT] fetches the image into the supernode's cache
// once, then asks each chosen agent (from the agent registry) to pull it through the swarm
// (agent/pulls.h) and follows their progress; GET /api/v1/preheat/ID reports it per agent.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/mirror/node.h"
#include "common/mirror/options.h"
#include "supernode/agents.h"

namespace layerswarm::supernode {

struct PreheatRequest {
  mirror::PinSpec image;
  std::string reference;            // as asked
  std::string zone;                 // only agents of this zone ("" any)
  std::vector<std::string> agents;  // only these agent ids (empty: any)
  int share = 100;                  // percent of the matching agents (at least one)
};

// Parses the query string of a preheat request. Errors: kNameInvalid naming the field.
Result<PreheatRequest> parse_preheat(std::string_view query);

class Preheater {
 public:
  static constexpr std::size_t kMaxJobs = 256;

  Preheater(asio::any_io_executor executor, mirror::MirrorNode& node, const AgentRegistry& agents,
            std::string token);
  ~Preheater();

  // Starts a preheat; its id. Errors: kTooManyRequests (too many preheats in progress).
  Result<std::string> start(PreheatRequest request);
  // A preheat's progress as JSON; nullopt for an unknown id.
  std::optional<std::string> status(const std::string& id) const;
  // Every remembered preheat, newest first, as a JSON array of the objects status() gives
  // (GET /api/v1/preheat; the status page).
  std::string list() const;

  struct Job;

 private:
  Task<void> run(std::string id);
  Task<void> follow(std::string id);

  asio::any_io_executor executor_;
  mirror::MirrorNode& node_;
  const AgentRegistry& agents_;
  std::string token_;
  HttpClient client_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::supernode
