#include "supernode/preheat.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/log.h"
#include "common/mirror/pins.h"
#include "common/url.h"

namespace layerswarm::supernode {
namespace {

// How often agents are asked for their progress, and how long a preheat may take.
constexpr std::chrono::seconds kPoll{1};
constexpr std::chrono::minutes kDeadline{60};

struct AgentProgress {
  AgentRecord agent;
  std::string state = "asked";  // asked | pulling | done | failed
  std::string error;
  std::uint64_t blobs_total = 0, blobs_done = 0, bytes_total = 0, bytes_done = 0;
  bool finished() const { return state == "done" || state == "failed"; }
};

}  // namespace

struct Preheater::Job {
  PreheatRequest request;
  std::string state = "fetching";  // fetching | distributing | done | failed
  std::string error;
  std::chrono::system_clock::time_point created = std::chrono::system_clock::now();
  std::uint64_t blobs = 0, bytes = 0;
  std::vector<AgentProgress> agents;
};

Result<PreheatRequest> parse_preheat(std::string_view query) {
  PreheatRequest r;
  for (auto& [k, v] : query_params(query)) {
    if (k == "image") {
      r.reference = v;
    } else if (k == "platform") {
      r.image.platforms.push_back(v);
    } else if (k == "zone") {
      r.zone = v;
    } else if (k == "agents") {
      for (std::size_t at = 0; at <= v.size() && r.agents.size() < 10'000;) {
        const auto comma = v.find(',', at);
        const std::string id =
            v.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (!id.empty()) r.agents.push_back(id);
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    } else if (k == "share") {
      try {
        r.share = std::stoi(v);
      } catch (const std::exception&) {
        r.share = -1;
      }
      if (r.share < 1 || r.share > 100) {
        return Error(Errc::kNameInvalid, "preheat: share is a percentage from 1 to 100");
      }
    }
  }
  auto ref = parse_image_reference(r.reference);
  if (!ref) return Error(Errc::kNameInvalid, "preheat: image: " + ref.error().what());
  r.image.image = *ref;
  return r;
}

Preheater::Preheater(asio::any_io_executor executor, mirror::MirrorNode& node,
                     const AgentRegistry& agents, std::string token)
    : executor_(executor),
      node_(node),
      agents_(agents),
      token_(std::move(token)),
      client_(executor, ClientOptions{}) {}

Preheater::~Preheater() { *alive_ = false; }

Result<std::string> Preheater::start(PreheatRequest request) {
  std::size_t running = 0;
  for (const auto& [id, job] : jobs_) {
    if (job->state != "done" && job->state != "failed") ++running;
  }
  if (running >= 16) return Error(Errc::kTooManyRequests, "16 preheats are in progress");
  // Room: the oldest finished preheats are forgotten.
  while (jobs_.size() >= kMaxJobs) {
    auto oldest = jobs_.end();
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      const bool over = it->second->state == "done" || it->second->state == "failed";
      if (over && (oldest == jobs_.end() || it->second->created < oldest->second->created)) {
        oldest = it;
      }
    }
    if (oldest == jobs_.end()) break;
    jobs_.erase(oldest);
  }
  const std::string id = random_hex(8);
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  jobs_[id] = job;
  LOG_INFO("preheat {}: {} ({}{})", id, job->request.reference,
           job->request.zone.empty() ? "every zone" : "zone " + job->request.zone,
           job->request.share < 100 ? ", " + std::to_string(job->request.share) + "%" : "");
  asio::co_spawn(executor_, run(id), asio::detached);
  return id;
}

Task<void> Preheater::run(std::string id) {
  std::weak_ptr<bool> alive = alive_;
  std::shared_ptr<Job> job = jobs_[id];
  // Once into the supernode's cache (the upstream sends each blob once)...
  mirror::ImageFetcher& images = node_.images();
  mirror::ImageContents contents;
  Status resolved = co_await images.resolve(job->request.image, contents);
  if (alive.expired()) co_return;
  for (const auto& [blob, size] : contents.blobs) {
    if (!resolved) break;
    resolved = co_await images.ensure(blob);
    if (alive.expired()) co_return;
  }
  if (!resolved) {
    job->state = "failed";
    job->error = resolved.error().what();
    LOG_WARN("preheat {}: {}", id, job->error);
    co_return;
  }
  job->blobs = contents.blobs.size();
  job->bytes = contents.blob_bytes;
  // ...then to the chosen agents, through the swarm.
  std::vector<AgentRecord> chosen;
  for (auto& a : agents_.list(std::chrono::system_clock::now())) {
    if (!job->request.zone.empty() && a.zone != job->request.zone) continue;
    const auto& ids = job->request.agents;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), a.id) == ids.end()) continue;
    chosen.push_back(std::move(a));
  }
  if (job->request.share < 100 && !chosen.empty()) {
    const std::size_t keep = std::max<std::size_t>(
        1, (chosen.size() * static_cast<std::size_t>(job->request.share) + 99) / 100);
    chosen.resize(std::min(keep, chosen.size()));
  }
  job->state = "distributing";
  for (auto& a : chosen) {
    AgentProgress progress;
    progress.agent = std::move(a);
    job->agents.push_back(std::move(progress));
  }
  for (auto& p : job->agents) {
    auto url = Url::parse("http://" + p.agent.address + "/api/v1/pull");
    if (!url) {
      p.state = "failed";
      p.error = url.error().what();
      continue;
    }
    url->add_query("job", id);
    url->add_query("image", job->request.reference);
    for (const auto& platform : job->request.image.platforms) url->add_query("platform", platform);
    ClientRequest request;
    request.method = "POST";
    request.url = *url;
    request.headers.add("Authorization", "Bearer " + token_);
    auto answer = co_await client_.send(std::move(request));
    if (alive.expired()) co_return;
    if (!answer || (*answer)->status != 202) {
      p.state = "failed";
      p.error = answer ? "the agent answered " + std::to_string((*answer)->status)
                       : answer.error().what();
    } else {
      (void)co_await (*answer)->read_all(64 << 10);
      if (alive.expired()) co_return;
    }
  }
  co_await follow(id);
}

Task<void> Preheater::follow(std::string id) {
  std::weak_ptr<bool> alive = alive_;
  std::shared_ptr<Job> job = jobs_[id];
  const SteadyTime deadline = deadline_after(kDeadline);
  asio::steady_timer pause(executor_);
  for (int round = 0; round < 100'000; ++round) {
    bool pending = false;
    for (auto& p : job->agents) {
      if (p.finished()) continue;
      if (std::chrono::steady_clock::now() >= deadline) {
        p.state = "failed";
        p.error = "not done within the preheat's deadline";
        continue;
      }
      pending = true;
      auto url = Url::parse("http://" + p.agent.address + "/api/v1/pull/" + id);
      if (!url) continue;
      ClientRequest request;
      request.url = *url;
      request.headers.add("Authorization", "Bearer " + token_);
      auto answer = co_await client_.send(std::move(request));
      if (alive.expired()) co_return;
      if (!answer || (*answer)->status != 200) continue;  // asked again next round
      auto body = co_await (*answer)->read_all(64 << 10);
      if (alive.expired()) co_return;
      const auto j = nlohmann::json::parse(body ? *body : "", nullptr, false);
      if (!j.is_object()) continue;
      const std::string state = j.value("state", "");
      p.state = state == "resolving" ? "pulling" : state;
      p.error = j.value("error", "");
      p.blobs_total = j.value("blobs_total", 0ULL);
      p.blobs_done = j.value("blobs_done", 0ULL);
      p.bytes_total = j.value("bytes_total", 0ULL);
      p.bytes_done = j.value("bytes_done", 0ULL);
    }
    if (!pending) break;
    pause.expires_after(kPoll);
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired()) co_return;
  }
  const auto failed = std::count_if(job->agents.begin(), job->agents.end(),
                                    [](const AgentProgress& p) { return p.state == "failed"; });
  job->state = failed > 0 ? "failed" : "done";
  if (failed > 0) job->error = std::to_string(failed) + " agents failed";
  LOG_INFO("preheat {}: {} ({} agents, {} failed)", id, job->state, job->agents.size(), failed);
}

namespace {

nlohmann::json job_json(const std::string& id, const Preheater::Job& job);

}  // namespace

std::optional<std::string> Preheater::status(const std::string& id) const {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return job_json(id, *it->second).dump();
}

std::string Preheater::list() const {
  std::vector<std::pair<const std::string*, const Job*>> jobs;
  for (const auto& [id, job] : jobs_) jobs.emplace_back(&id, job.get());
  std::sort(jobs.begin(), jobs.end(),
            [](const auto& a, const auto& b) { return a.second->created > b.second->created; });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, job] : jobs) out.push_back(job_json(*id, *job));
  return out.dump();
}

namespace {

nlohmann::json job_json(const std::string& id, const Preheater::Job& job) {
  nlohmann::json agents = nlohmann::json::array();
  std::size_t done = 0;
  for (const auto& p : job.agents) {
    if (p.state == "done") ++done;
    agents.push_back({{"id", p.agent.id},
                      {"address", p.agent.address},
                      {"zone", p.agent.zone},
                      {"state", p.state},
                      {"error", p.error},
                      {"blobs_total", p.blobs_total},
                      {"blobs_done", p.blobs_done},
                      {"bytes_total", p.bytes_total},
                      {"bytes_done", p.bytes_done}});
  }
  nlohmann::json out = {{"id", id},
                        {"image", job.request.reference},
                        {"zone", job.request.zone},
                        {"state", job.state},
                        {"error", job.error},
                        {"blobs", job.blobs},
                        {"bytes", job.bytes},
                        {"agents_done", done},
                        {"created", std::chrono::duration_cast<std::chrono::milliseconds>(
                                        job.created.time_since_epoch())
                                        .count()},
                        {"agents", std::move(agents)}};
  return out;
}

}  // namespace

}  // namespace layerswarm::supernode
