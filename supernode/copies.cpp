#include "supernode/copies.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/json_config.h"
#include "common/log.h"
#include "common/url.h"

namespace layerswarm::supernode {
namespace {

nlohmann::json rule_json(const CopyRule& r) {
  nlohmann::json zones = nlohmann::json::object();
  for (const auto& [zone, z] : r.zones) {
    zones[zone] = {{"holders", z.holders}, {"agents", z.agents}, {"preheat", z.preheat}};
  }
  return {
      {"id", r.id},
      {"image", r.reference},
      {"platforms", r.image.platforms},
      {"zone", r.zone},
      {"copies", r.copies},
      {"checked",
       std::chrono::duration_cast<std::chrono::milliseconds>(r.checked.time_since_epoch()).count()},
      {"zones", std::move(zones)}};
}

}  // namespace

Result<CopyRule> parse_copy_rule(std::string_view query) {
  CopyRule r;
  bool copies = false;
  for (auto& [k, v] : query_params(query)) {
    if (k == "image") {
      r.reference = v;
    } else if (k == "zone") {
      if (!valid_zone(v)) return Error(Errc::kNameInvalid, "copies: bad zone");
      r.zone = v;
    } else if (k == "copies") {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 10'000) {
        return Error(Errc::kNameInvalid, "copies: copies must be 1 to 10000");
      }
      r.copies = static_cast<int>(n);
      copies = true;
    } else if (k == "platform") {
      if (!mirror::valid_platform(v)) return Error(Errc::kNameInvalid, "copies: bad platform");
      r.image.platforms.push_back(v);
    }
  }
  if (r.reference.empty()) return Error(Errc::kNameInvalid, "copies: image= is required");
  if (!copies) return Error(Errc::kNameInvalid, "copies: copies= is required");
  auto image = parse_image_reference(r.reference);
  if (!image) return image.error();
  r.image.image = std::move(*image);
  return r;
}

CopyKeeper::CopyKeeper(asio::any_io_executor executor, const AgentRegistry& agents,
                       Preheater& preheater, std::string token, std::string rules_file,
                       std::chrono::milliseconds interval)
    : executor_(executor),
      agents_(agents),
      preheater_(preheater),
      token_(std::move(token)),
      file_(std::move(rules_file)),
      interval_(interval),
      client_(executor, ClientOptions{}),
      timer_(std::make_unique<asio::steady_timer>(executor)) {}

CopyKeeper::~CopyKeeper() { stop(); }

void CopyKeeper::start() {
  load();
  asio::co_spawn(executor_, loop(), asio::detached);
}

void CopyKeeper::stop() {
  *alive_ = false;
  timer_->cancel();
}

void CopyKeeper::load() {
  std::error_code ec;
  if (!std::filesystem::exists(file_, ec)) return;  // no rules yet
  const auto loaded = load_json_file(file_);
  const nlohmann::json j = loaded ? *loaded : nlohmann::json();
  if (!j.is_array()) {
    LOG_ERROR("{}: not a JSON list; copy rules ignored until it is fixed", file_);
    return;
  }
  for (const auto& e : j) {
    if (!e.is_object()) continue;
    std::string query = "image=" + percent_encode(e.value("image", "")) +
                        "&copies=" + std::to_string(e.value("copies", 0)) +
                        "&zone=" + percent_encode(e.value("zone", ""));
    for (const auto& p : e.value("platforms", nlohmann::json::array())) {
      if (p.is_string()) query += "&platform=" + percent_encode(p.get<std::string>());
    }
    auto rule = parse_copy_rule(query);
    if (!rule) {
      LOG_ERROR("{}: a rule: {}; skipped", file_, rule.error().what());
      continue;
    }
    rule->id = e.value("id", random_hex(6));
    rules_.emplace(rule->id, std::move(*rule));
  }
}

Status CopyKeeper::save() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [id, r] : rules_) {
    list.push_back({{"id", id},
                    {"image", r.reference},
                    {"platforms", r.image.platforms},
                    {"zone", r.zone},
                    {"copies", r.copies}});
  }
  return save_json_file(file_, list);
}

Result<std::string> CopyKeeper::add(CopyRule rule) {
  if (rules_.size() >= kMaxRules) return Error(Errc::kTooManyRequests, "too many copy rules");
  rule.id = random_hex(6);
  const std::string id = rule.id;
  rules_.emplace(id, std::move(rule));
  if (auto s = save(); !s) {
    rules_.erase(id);
    return s.error();
  }
  asio::co_spawn(executor_, check(id), asio::detached);  // at once, not at the next round
  return id;
}

Status CopyKeeper::remove(const std::string& id) {
  auto it = rules_.find(id);
  if (it == rules_.end()) return Error(Errc::kNotFound, "no such copy rule");
  CopyRule kept = std::move(it->second);
  rules_.erase(it);
  if (auto s = save(); !s) {
    rules_.emplace(id, std::move(kept));
    return s;
  }
  return {};
}

std::string CopyKeeper::to_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, r] : rules_) out.push_back(rule_json(r));
  return out.dump();
}

Task<void> CopyKeeper::loop() {
  std::weak_ptr<bool> alive = alive_;
  for (long round = 0; round < (1L << 40); ++round) {
    timer_->expires_after(interval_);
    boost::system::error_code ec;
    co_await timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired() || !*alive_) co_return;
    std::vector<std::string> ids;
    for (const auto& [id, r] : rules_) ids.push_back(id);
    for (const auto& id : ids) {
      co_await check(id);
      if (alive.expired() || !*alive_) co_return;
    }
  }
}

Task<bool> CopyKeeper::holds(const AgentRecord& agent, const CopyRule& rule) {
  auto url = Url::parse("http://" + agent.address + "/api/v1/cache");
  if (!url) co_return false;
  ClientRequest request;
  request.url = *url;
  request.headers.add("Authorization", "Bearer " + token_);
  request.timeout = std::chrono::seconds(10);
  auto answer = co_await client_.send(std::move(request));
  if (!answer || (*answer)->status != 200) co_return false;
  auto body = co_await (*answer)->read_all(64 << 20);
  const auto j = nlohmann::json::parse(body ? *body : "", nullptr, false);
  if (!j.is_object()) co_return false;
  const ImageReference& want = rule.image.image;
  for (const auto& i : j.value("images", nlohmann::json::array())) {
    const std::string repository = i.value("repository", "");
    const bool same = want.digest
                          ? i.value("digest", "") == want.digest->str()
                          : i.value("tag", "") == want.tag &&
                                (repository == want.name || repository == "library/" + want.name) &&
                                (want.registry.empty() || i.value("registry", "") == want.registry);
    if (same && i.value("blobs", 0) > 0 && i.value("blobs_cached", 0) == i.value("blobs", 0)) {
      co_return true;
    }
  }
  co_return false;
}

// One rule: count holders per zone (asking agents until K are found) and preheat the rest.
Task<void> CopyKeeper::check(std::string id) {
  std::weak_ptr<bool> alive = alive_;
  std::map<std::string, std::vector<AgentRecord>> zones;
  {
    auto it = rules_.find(id);
    if (it == rules_.end()) co_return;
    for (auto& a : agents_.list(std::chrono::system_clock::now())) {
      if (!it->second.zone.empty() && a.zone != it->second.zone) continue;
      zones[a.zone].push_back(std::move(a));
    }
  }
  for (auto& [zone, members] : zones) {
    auto it = rules_.find(id);
    if (it == rules_.end()) co_return;
    const CopyRule rule = it->second;  // a copy: the rule may go while this waits
    auto& state = it->second.zones[zone];
    // A preheat still running for this zone is left to finish.
    if (!state.preheat.empty()) {
      const auto status = preheater_.status(state.preheat);
      const auto j = nlohmann::json::parse(status.value_or("{}"), nullptr, false);
      const std::string phase = j.is_object() ? j.value("state", "") : "";
      if (phase == "fetching" || phase == "distributing") continue;
    }
    int holders = 0;
    std::vector<const AgentRecord*> others;
    for (const auto& a : members) {
      if (holders >= rule.copies) break;
      const bool held = co_await holds(a, rule);
      if (alive.expired() || !*alive_) co_return;
      if (held) {
        ++holders;
      } else {
        others.push_back(&a);
      }
    }
    auto again = rules_.find(id);
    if (again == rules_.end()) co_return;
    auto& z = again->second.zones[zone];
    z.holders = holders;
    z.agents = static_cast<int>(members.size());
    again->second.checked = std::chrono::system_clock::now();
    const int missing = rule.copies - holders;
    if (missing <= 0 || others.empty()) continue;
    // Those with the most free cache first.
    std::sort(others.begin(), others.end(), [](const AgentRecord* a, const AgentRecord* b) {
      const auto free = [](const AgentRecord* r) {
        return r->cache_capacity > r->cache_bytes ? r->cache_capacity - r->cache_bytes : 0;
      };
      return free(a) > free(b);
    });
    PreheatRequest request;
    request.image = rule.image;
    request.reference = rule.reference;
    request.zone = zone;
    for (int i = 0; i < missing && i < static_cast<int>(others.size()); ++i) {
      request.agents.push_back(others[static_cast<std::size_t>(i)]->id);
    }
    auto started = preheater_.start(std::move(request));
    if (!started) {
      LOG_WARN("copies {}: {}: zone {}: {}", id, rule.reference, zone, started.error().what());
      continue;
    }
    z.preheat = *started;
    LOG_INFO("copies {}: {} has {} of {} copies in zone {}; copying to {} more (preheat {})", id,
             rule.reference, holders, rule.copies, zone.empty() ? "-" : zone,
             std::min<std::size_t>(static_cast<std::size_t>(missing), others.size()), *started);
  }
}

}  // namespace layerswarm::supernode
