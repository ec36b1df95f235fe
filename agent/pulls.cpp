#include "agent/pulls.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/log.h"
#include "common/mirror/pins.h"
#include "common/mirror/responses.h"
#include "common/url.h"

namespace layerswarm::agent {
namespace {

constexpr std::string_view kPullPath = "/api/v1/pull";

bool safe_job_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

nlohmann::json to_json(const std::string& id, const PullProgress& p) {
  return {{"job", id},
          {"image", p.image},
          {"state", p.state},
          {"error", p.error},
          {"blobs_total", p.blobs_total},
          {"blobs_done", p.blobs_done},
          {"bytes_total", p.bytes_total},
          {"bytes_done", p.bytes_done}};
}

}  // namespace

AgentFront::AgentFront(asio::any_io_executor executor, mirror::MirrorNode& node, std::string token)
    : executor_(executor), node_(node), token_(std::move(token)) {}

AgentFront::~AgentFront() { *alive_ = false; }

Task<void> AgentFront::handle(HttpRequest request, ResponseWriter& out) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (path != kPullPath && !path.starts_with(std::string(kPullPath) + "/")) {
    co_await node_.mirror().handle(std::move(request), out);
    co_return;
  }
  RequestLog log;
  log.method = request.method;
  log.remote = request.remote;
  log.object = path;
  if (!carries_token(request.headers.get("Authorization").value_or(""), token_)) {
    Error refused(Errc::kUnauthorized, "pulls are for the site's supernode (the cluster token)");
    co_await mirror::send_error(out, std::move(refused), log);
  } else if (path == kPullPath && request.method == "POST") {
    co_await start_pull(request, out, log);
  } else if (request.method == "GET" && path.size() > kPullPath.size() + 1) {
    const std::string id = path.substr(kPullPath.size() + 1);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
      Error unknown(Errc::kNotFound, "no pull " + id.substr(0, 64));
      co_await mirror::send_error(out, std::move(unknown), log);
    } else {
      ResponseHead head;
      head.headers.add("Content-Type", "application/json");
      const std::string body = to_json(id, it->second).dump();
      co_await mirror::send_body(out, std::move(head), body, log);
    }
  } else {
    Error wrong(Errc::kMethodNotAllowed, "POST /api/v1/pull or GET /api/v1/pull/<job>");
    co_await mirror::send_error(out, std::move(wrong), log);
  }
  log_request(log);
}

Task<void> AgentFront::start_pull(const HttpRequest& request, ResponseWriter& out,
                                  RequestLog& log) {
  const auto q = request.target.find('?');
  std::string job;
  mirror::PinSpec image;
  std::string reference;
  for (auto& [k, v] : query_params(q == std::string::npos ? "" : request.target.substr(q + 1))) {
    if (k == "job") job = v;
    if (k == "image") reference = v;
    if (k == "platform") image.platforms.push_back(v);
  }
  auto ref = parse_image_reference(reference);
  Status valid;
  if (!safe_job_id(job)) {
    valid = Error(Errc::kNameInvalid, "job: letters, digits, - and _ (at most 64)");
  } else if (!ref) {
    valid = ref.error();
  } else if (jobs_.count(job) > 0) {
    valid = Error(Errc::kNameInvalid, "job " + job + " exists");
  }
  if (!valid) {
    co_await mirror::send_error(out, valid.error(), log);
    co_return;
  }
  image.image = *ref;
  // Room for the new job: the oldest finished ones go.
  for (auto it = jobs_.begin(); jobs_.size() >= kMaxJobs && it != jobs_.end();) {
    it = it->second.state == "done" || it->second.state == "failed" ? jobs_.erase(it) : ++it;
  }
  if (jobs_.size() >= kMaxJobs) {
    Error busy(Errc::kTooManyRequests, "too many pulls in progress");
    co_await mirror::send_error(out, std::move(busy), log);
    co_return;
  }
  jobs_[job].image = reference;
  LOG_INFO("pull {} of {} asked by the supernode", job, reference);
  asio::co_spawn(executor_, pull(job, std::move(image)), asio::detached);
  ResponseHead head;
  head.status = 202;
  head.headers.add("Content-Type", "application/json");
  const std::string body = to_json(job, jobs_[job]).dump();
  co_await mirror::send_body(out, std::move(head), body, log);
}

Task<void> AgentFront::pull(std::string job, mirror::PinSpec image) {
  std::weak_ptr<bool> alive = alive_;
  mirror::ImageFetcher& images = node_.images();
  mirror::ImageContents contents;
  Status resolved = co_await images.resolve(image, contents);
  if (alive.expired()) co_return;
  PullProgress& p = jobs_[job];
  if (!resolved) {
    p.state = "failed";
    p.error = resolved.error().what();
    LOG_WARN("pull {} of {}: {}", job, p.image, p.error);
    co_return;
  }
  p.state = "pulling";
  p.blobs_total = contents.blobs.size();
  p.bytes_total = contents.blob_bytes;
  for (const auto& [blob, size] : contents.blobs) {
    Status got = co_await images.ensure(blob);
    if (alive.expired()) co_return;
    PullProgress& q = jobs_[job];
    if (!got) {
      q.state = "failed";
      q.error = "blob " + blob.digest.str() + ": " + got.error().what();
      LOG_WARN("pull {} of {}: {}", job, q.image, q.error);
      co_return;
    }
    ++q.blobs_done;
    q.bytes_done += size;
  }
  PullProgress& done = jobs_[job];
  done.state = "done";
  LOG_INFO("pull {} of {}: {} blobs ({} bytes) in the cache", job, done.image, done.blobs_done,
           done.bytes_done);
}

}  // namespace layerswarm::agent
