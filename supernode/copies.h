// Copies that stay (docs/operations.md "Copies that stay"): standing rules "keep at least K
// copies of this image in each zone" (or in one zone). Every `interval` the supernode asks the
// live agents of each zone for their cache listing (GET /api/v1/cache with the token) until it
// has found K that hold every blob of the image; when fewer do (agents left, evicted or
// removed it, or new zones appeared), it preheats the image onto as many more as are missing,
// those with the most free cache first, through the swarm. Rules are kept in
// data_dir/copy_rules.json across restarts.
//
//   POST   /api/v1/copies?image=REF&copies=K[&zone=Z][&platform=os/arch]...   201 {"id"}
//   GET    /api/v1/copies            the rules with the last check per zone
//   DELETE /api/v1/copies/<id>
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/mirror/options.h"
#include "supernode/agents.h"
#include "supernode/preheat.h"

namespace layerswarm::supernode {

struct CopyRule {
  std::string id;
  std::string reference;  // as asked
  mirror::PinSpec image;
  std::string zone;  // "": every zone that has agents
  int copies = 1;
  // The last check, per zone: agents holding the whole image, and the preheat started.
  struct ZoneState {
    int holders = 0;
    int agents = 0;
    std::string preheat;  // id of the last preheat started for this zone ("" none)
  };
  std::map<std::string, ZoneState> zones;
  std::chrono::system_clock::time_point checked{};
};

// Parses POST /api/v1/copies's query. Errors: kNameInvalid naming the field.
Result<CopyRule> parse_copy_rule(std::string_view query);

class CopyKeeper {
 public:
  static constexpr std::size_t kMaxRules = 1000;

  CopyKeeper(asio::any_io_executor executor, const AgentRegistry& agents, Preheater& preheater,
             std::string token, std::string rules_file, std::chrono::milliseconds interval);
  ~CopyKeeper();

  void start();
  void stop();
  // Errors: kTooManyRequests (too many rules), kStorage (the file cannot be written).
  Result<std::string> add(CopyRule rule);
  // Errors: kNotFound.
  Status remove(const std::string& id);
  std::string to_json() const;

 private:
  Task<void> loop();
  Task<void> check(std::string id);
  // Whether the agent's cache holds every blob of the rule's image.
  Task<bool> holds(const AgentRecord& agent, const CopyRule& rule);
  Status save() const;
  void load();

  asio::any_io_executor executor_;
  const AgentRegistry& agents_;
  Preheater& preheater_;
  std::string token_;
  std::string file_;
  std::chrono::milliseconds interval_;
  HttpClient client_;
  std::map<std::string, CopyRule> rules_;
  std::unique_ptr<asio::steady_timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::supernode
