#include "common/mirror/mirror.h"
#include "common/mirror/cache_admin.h"

#include "common/audit.h"
#include "common/digest.h"
#include "common/metrics.h"
#include "common/mirror/operations.h"
#include "common/mirror/responses.h"
#include "common/reference.h"
#include "common/url.h"

namespace layerswarm::mirror {

Mirror::Mirror(Upstreams& upstreams, ManifestService& manifests, BlobService& blobs,
               Counters& counters, MirrorAuth auth, std::chrono::milliseconds response_timeout)
    : upstreams_(upstreams),
      manifests_(manifests),
      blobs_(blobs),
      counters_(counters),
      response_timeout_(response_timeout),
      auth_(auth) {}

Task<void> Mirror::challenge(const std::string& registry, ResponseWriter& out, RequestLog& log,
                             std::string why) {
  ResponseHead head;
  head.status = 401;
  head.headers.add("Content-Type", "application/json");
  head.headers.add("WWW-Authenticate", "Basic realm=\"layerswarm mirror of " + registry + "\"");
  log.error = why;
  const std::string body = oci_error_body(make_error_code(Errc::kUnauthorized), why);
  co_await send_body(out, std::move(head), body, log);
}

Task<bool> Mirror::authorize(std::string credential, const UpstreamTarget& target,
                             const std::string& repository, const std::string& path,
                             ResponseWriter& out, RequestLog& log) {
  if (credential.empty()) {
    co_await challenge(target.registry, out, log, "this registry needs your own credentials");
    co_return false;
  }
  Hasher hasher(Digest::Algorithm::kSha256);
  hasher.update(credential.data(), credential.size());
  const std::string key =
      std::string(hasher.finish().hex()) + "|" + target.registry + "|" + repository;
  const auto now = std::chrono::steady_clock::now();
  int status = 0;
  if (auto it = decisions_.find(key); it != decisions_.end() && now < it->second.until) {
    status = it->second.status;
  } else {
    UpstreamCall call;
    call.method = path == "tags/list" ? "GET" : "HEAD";
    call.repository = repository;
    call.path = path;
    if (path.rfind("manifests/", 0) == 0) call.headers.add("Accept", kManifestAccept);
    call.deadline = deadline_after(response_timeout_);
    // Behind a supernode the supernode asks the registry with the forwarded credential (the
    // agent may not reach the registry itself); otherwise a one-off client of the registry.
    std::shared_ptr<RegistryClient> client = target.client;
    if (upstreams_.through_supernode()) {
      call.headers.add(kForwardedAuthorization, credential);
    } else {
      client = upstreams_.client_with(target.registry, credential);
    }
    auto resp = co_await client->fetch(std::move(call));
    if (!resp) {
      co_await send_error(out, resp.error(), log);  // not cached: the registry could not tell
      co_return false;
    }
    status = (*resp)->status;
    // Only answers about the credential are reused for the repository; a 404 is about the
    // object asked for.
    if (status == 200 || status == 401 || status == 403) {
      if (decisions_.size() >= 10'000) decisions_.clear();  // a bound; entries are cheap to redo
      decisions_[key] = Decision{status, now + auth_.ttl};
    }
  }
  if (status == 200) co_return true;
  if (status == 401) {
    co_await challenge(target.registry, out, log, "the registry refused these credentials");
    co_return false;
  }
  Error refused = status == 403   ? Error(Errc::kDenied, "the registry denies these credentials")
                  : status == 404 ? upstream_status_error(404, path.rfind("blobs/", 0) == 0
                                                                   ? Errc::kBlobUnknown
                                                                   : Errc::kManifestUnknown)
                                  : upstream_status_error(status, Errc::kUpstreamUnavailable);
  co_await send_error(out, std::move(refused), log);
  co_return false;
}

namespace {

// Passes everything on, noting when the response head went out (the request duration metric:
// time to headers).
class TimedWriter final : public ResponseWriter {
 public:
  explicit TimedWriter(ResponseWriter& out) : out_(out) {}
  Task<boost::system::error_code> write_head(ResponseHead head) override {
    mark();
    co_return co_await out_.write_head(std::move(head));
  }
  Task<boost::system::error_code> write_body(std::string_view data) override {
    co_return co_await out_.write_body(data);
  }
  Task<boost::system::error_code> write_whole(ResponseHead head, std::string_view body) override {
    mark();
    co_return co_await out_.write_whole(std::move(head), body);
  }
  Task<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                             std::uint64_t length) override {
    co_return co_await out_.write_file(fd, offset, length);
  }
  void abort() override { out_.abort(); }
  bool head_written() const override { return out_.head_written(); }
  std::uint64_t body_bytes() const override { return out_.body_bytes(); }
  std::optional<SteadyTime> head_at() const { return head_at_; }

 private:
  void mark() {
    if (!head_at_) head_at_ = std::chrono::steady_clock::now();
  }
  ResponseWriter& out_;
  std::optional<SteadyTime> head_at_;
};

std::string_view kind_of(const RequestLog& log) {
  if (log.object.starts_with("manifests/")) return "manifest";
  if (log.object.starts_with("blobs/")) return "blob";
  if (log.object == "tags/list") return "tags";
  return "other";
}

}  // namespace

Task<void> Mirror::handle(HttpRequest request, ResponseWriter& raw) {
  if (is_operational_path(request.target)) {
    co_await serve_operational(request, raw, ready_ ? ready_() : true);
    co_return;
  }
  if (cache_admin_ && CacheAdmin::handles(request.target)) {
    co_await cache_admin_->handle(std::move(request), raw);
    co_return;
  }
  if (request.target == kStatusPath && request.method == "GET") {
    ResponseHead head;
    head.headers.add("Content-Type", "application/json");
    head.headers.add("Cache-Control", "no-store");
    const std::string body = status_json(role_);
    co_await raw.write_whole(std::move(head), body);
    co_return;
  }
  const auto start = std::chrono::steady_clock::now();
  ++counters_.requests;
  RequestLog log;
  log.method = request.method;
  log.remote = request.remote;
  if (audit_enabled()) {
    log.identity = audit_identity(request.headers.get("Authorization").value_or(""));
  }
  TimedWriter out(raw);
  co_await route(request, out, log);
  std::optional<double> head_seconds;
  if (auto at = out.head_at()) head_seconds = std::chrono::duration<double>(*at - start).count();
  Metrics::get().request(kind_of(log), log.status, log.source, head_seconds, out.body_bytes());
  if (log.status >= 500 || log.error.starts_with("aborted")) {
    ++counters_.errors;
  } else if (log.status >= 400) {
    ++counters_.client_errors;
  }
  log.millis =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  log_request(log);
}

Task<void> Mirror::route(const HttpRequest& request, ResponseWriter& out, RequestLog& log) {
  auto parsed = parse_route(request.method, request.target);
  if (!parsed) {
    log.object = request.target.substr(0, 200);
    co_await send_error(out, parsed.error(), log);
    co_return;
  }
  const Route& r = *parsed;
  if (r.kind == Route::Kind::kPing) {
    log.object = "v2";
    // A client learns here that the default registry wants its credentials.
    const std::string registry = upstreams_.default_registry();
    if (upstreams_.entry(registry).authorize_clients && !request.headers.get("Authorization")) {
      co_await challenge(registry, out, log, "this registry needs your own credentials");
      co_return;
    }
    ResponseHead head;
    head.headers.add("Content-Type", "application/json");
    co_await send_body(out, std::move(head), "{}", log);
    co_return;
  }
  auto target = upstreams_.resolve(r.registry);
  if (!target) {
    co_await send_error(out, target.error(), log);
    co_return;
  }
  log.registry = target->registry;
  log.repository = canonical_name(target->registry, r.name);
  // Client credentials: the registry's own setting here, or (on a supernode) a credential an
  // agent forwards, which is checked whatever this node's setting.
  const auto forwarded =
      auth_.honour_forwarded ? request.headers.get(kForwardedAuthorization) : std::nullopt;
  if (forwarded || upstreams_.entry(target->registry).authorize_clients) {
    const std::string path = r.kind == Route::Kind::kManifest
                                 ? "manifests/" + (r.digest ? r.digest->str() : r.tag)
                             : r.kind == Route::Kind::kBlob ? "blobs/" + r.digest->str()
                                                            : "tags/list";
    std::string credential(forwarded ? *forwarded
                                     : request.headers.get("Authorization").value_or(""));
    const bool allowed =
        co_await authorize(std::move(credential), *target, log.repository, path, out, log);
    if (!allowed) co_return;
  }
  switch (r.kind) {
    case Route::Kind::kManifest:
      log.object = "manifests/" + (r.digest ? r.digest->str() : r.tag);
      co_await serve_manifest(r, *target, out, log);
      break;
    case Route::Kind::kBlob:
      log.object = "blobs/" + r.digest->str();
      {
        BlobLocator blob{target->registry, log.repository, *r.digest};
        co_await blobs_.serve(std::move(blob), request, out, log);
      }
      break;
    case Route::Kind::kTagsList:
      log.object = "tags/list";
      co_await serve_tags(r, *target, out, log);
      break;
    case Route::Kind::kPing:
      break;
  }
}

Task<void> Mirror::serve_manifest(const Route& route, UpstreamTarget target, ResponseWriter& out,
                                  RequestLog& log) {
  const std::string repository = canonical_name(target.registry, route.name);
  Result<ManifestAnswer> answer = Error(Errc::kInternal);
  if (route.digest) {
    answer = co_await manifests_.by_digest(target, repository, *route.digest);
  } else {
    answer = co_await manifests_.by_tag(target, repository, route.tag);
  }
  if (!answer) {
    co_await send_error(out, answer.error(), log);
    co_return;
  }
  log.source = answer->source;
  ResponseHead head;
  head.headers.add("Content-Type", answer->manifest.media_type);
  head.headers.add("Docker-Content-Digest", answer->digest.str());
  head.headers.add("ETag", "\"" + answer->digest.str() + "\"");
  co_await send_body(out, std::move(head), answer->manifest.bytes, log);
}

// tags/list is passed through (not cached): only `n` and `last` reach the upstream.
Task<void> Mirror::serve_tags(const Route& route, UpstreamTarget target, ResponseWriter& out,
                              RequestLog& log) {
  log.source = "upstream";
  UpstreamCall call;
  call.repository = canonical_name(target.registry, route.name);
  call.path = "tags/list";
  call.deadline = deadline_after(response_timeout_);
  Url query = *Url::parse("http://x/");
  for (const char* key : {"n", "last"}) {
    const std::string k = std::string(key) + "=";
    std::string_view q = route.query;
    while (!q.empty()) {
      const auto amp = q.find('&');
      const std::string_view pair = q.substr(0, amp);
      if (pair.substr(0, k.size()) == k) {
        if (auto v = percent_decode(pair.substr(k.size()))) query.add_query(key, *v);
      }
      q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    }
  }
  call.path += query.target.substr(1);
  auto fetched = co_await fetch_with_fallback(target, std::move(call));
  if (!fetched) {
    co_await send_error(out, fetched.error(), log);
    co_return;
  }
  log.source = fetched->source;
  auto* resp = &fetched->response;
  if ((*resp)->status != 200) {
    Error error = upstream_status_error((*resp)->status, Errc::kNameUnknown);
    co_await send_error(out, std::move(error), log);
    co_return;
  }
  auto body = co_await (*resp)->read_all(kManifestLimit);
  if (!body) {
    co_await send_error(out, body.error(), log);
    co_return;
  }
  ResponseHead head;
  head.headers.add("Content-Type", "application/json");
  if (auto link = (*resp)->headers.get("Link")) head.headers.add("Link", std::string(*link));
  co_await send_body(out, std::move(head), *body, log);
}

}  // namespace layerswarm::mirror
