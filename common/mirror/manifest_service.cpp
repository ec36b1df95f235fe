#include "common/mirror/manifest_service.h"

#include "common/duration.h"
#include "common/log.h"
#include "common/mirror/repository_access.h"

namespace layerswarm::mirror {

namespace {

constexpr const char* kAcceptAll = kManifestAccept;

UpstreamCall manifest_call(const char* method, const std::string& repository,
                           const std::string& reference, SteadyTime deadline) {
  UpstreamCall call;
  call.method = method;
  call.repository = repository;
  call.path = "manifests/" + reference;
  call.headers.add("Accept", kAcceptAll);
  call.deadline = deadline;
  return call;
}

}  // namespace

ManifestService::ManifestService(Store& store, const Clock& clock, Counters& counters,
                                 ManifestPolicy policy)
    : store_(store), clock_(clock), counters_(counters), policy_(policy) {}

Result<ManifestAnswer> ManifestService::from_cache(const Digest& digest, std::string source) {
  auto m = store_.get_manifest(digest);
  if (!m) return m.error();
  store_.touch(digest, m->accessed_ms);
  return ManifestAnswer{digest, std::move(*m), std::move(source)};
}

Task<Result<ManifestAnswer>> ManifestService::by_digest(UpstreamTarget target,
                                                        std::string repository, Digest digest) {
  if (auto hit = from_cache(digest, "cache")) {
    auto admitted = co_await admit(target, repository, digest);
    if (!admitted) co_return admitted.error();
    ++counters_.cache_hits;
    co_return hit;
  }
  const std::string key = "d|" + target.registry + "|" + repository + "|" + digest.str();
  Task<Result<ManifestAnswer>> task =
      fetch(target, repository, digest.str(), digest, deadline_after(policy_.response_timeout));
  co_return co_await flights_.run(key, std::move(task));
}

Task<Result<ManifestAnswer>> ManifestService::by_tag(UpstreamTarget target, std::string repository,
                                                     std::string tag) {
  const auto cached = store_.get_tag(target.registry, repository, tag);
  if (decide_tag(cached, clock_.now(), policy_.tag_ttl) == TagDecision::kServeCached) {
    if (auto hit = from_cache(cached->digest, "cache")) {
      ++counters_.cache_hits;
      co_return hit;
    }
  }
  const std::string key = "t|" + target.registry + "|" + repository + "|" + tag;
  Task<Result<ManifestAnswer>> task = revalidate(target, repository, tag);
  co_return co_await flights_.run(key, std::move(task));
}

Task<Status> ManifestService::admit(UpstreamTarget target, std::string repository, Digest digest) {
  const Shown shown =
      shown_in(store_, clock_, digest, target.registry, repository, policy_.repository_check);
  if (shown.fresh) co_return Status{};
  UpstreamCall call =
      manifest_call("HEAD", repository, digest.str(), deadline_after(policy_.response_timeout));
  auto fetched = co_await fetch_with_fallback(target, std::move(call));
  Status answer;
  if (!fetched) {
    answer = fetched.error();
  } else if (const int status = fetched->response->status; status != 200) {
    answer = upstream_status_error(status, Errc::kManifestUnknown);
  }
  co_return settle(store_, digest, target.registry, repository, shown, answer,
                   Errc::kManifestUnknown);
}

Task<Result<ManifestAnswer>> ManifestService::revalidate(UpstreamTarget target,
                                                         std::string repository, std::string tag) {
  const auto cached = store_.get_tag(target.registry, repository, tag);
  ++counters_.tag_revalidations;
  auto result = co_await resolve_tag(target, repository, tag, cached);
  if (result) co_return result;
  const Error& error = result.error();
  const bool within = cached && may_serve_stale(*cached, clock_.now(), policy_.max_stale, error);
  // A pinned tag stands in however old (an edge node offline for days): with a warning.
  const bool pinned = cached && !within && is_availability_error(error) &&
                      store_.tag_pinned(target.registry, repository, tag);
  if (within || pinned) {
    if (auto stale = from_cache(cached->digest, "stale")) {
      ++counters_.stale_served;
      if (pinned) {
        LOG_WARN(
            "{}/{}:{}: upstream failed ({}); serving the pinned {} although it was last "
            "validated {} ago, past cache.max_stale",
            target.registry, repository, tag, error.what(), cached->digest.str(),
            format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(
                clock_.now() - cached->validated)));
      } else {
        LOG_WARN("{}/{}:{}: upstream failed ({}); serving the cached {}", target.registry,
                 repository, tag, error.what(), cached->digest.str());
      }
      co_return stale;
    }
  }
  if (cached && error.code == make_error_code(Errc::kManifestUnknown)) {
    (void)store_.delete_tag(target.registry, repository, tag);  // the upstream says it is gone
  }
  co_return result;
}

Task<Result<ManifestAnswer>> ManifestService::resolve_tag(UpstreamTarget target,
                                                          std::string repository, std::string tag,
                                                          std::optional<TagRecord> cached) {
  const SteadyTime deadline = deadline_after(policy_.response_timeout);
  if (!cached) {
    // Never seen: the manifest is needed anyway, so one GET (Docker Hub counts a pull either
    // way) instead of HEAD + GET saves a round trip.
    auto answer = co_await fetch(target, repository, tag, std::nullopt, deadline);
    if (answer) remember_tag(target, repository, tag, *answer);
    co_return answer;
  }
  UpstreamCall head_call = manifest_call("HEAD", repository, tag, deadline);
  auto fetched_head = co_await fetch_with_fallback(target, std::move(head_call));
  if (!fetched_head) co_return fetched_head.error();
  auto head = std::move(fetched_head->response);
  const int status = head->status;
  if (status != 200 && status != 405)
    co_return upstream_status_error(status, Errc::kManifestUnknown);
  std::optional<Digest> digest;
  if (auto text = head->headers.get("Docker-Content-Digest"); text && status == 200) {
    if (auto parsed = Digest::parse(*text)) digest = std::move(*parsed);
  }
  head.reset();  // a HEAD has no body: the connection goes back to the pool

  Result<ManifestAnswer> answer = Error(Errc::kInternal);
  if (digest) {
    const bool same = cached && cached->digest == *digest;
    answer = from_cache(*digest, same ? "revalidated" : "cache");
    if (!answer) {
      answer = co_await fetch(target, repository, digest->str(), *digest, deadline);
    }
  } else {
    answer = co_await fetch(target, repository, tag, std::nullopt, deadline);
  }
  if (answer) remember_tag(target, repository, tag, *answer);
  co_return answer;
}

Task<Result<ManifestAnswer>> ManifestService::fetch(UpstreamTarget target, std::string repository,
                                                    std::string reference,
                                                    std::optional<Digest> expected,
                                                    SteadyTime deadline) {
  UpstreamCall call = manifest_call("GET", repository, reference, deadline);
  auto fetched = co_await fetch_with_fallback(target, std::move(call));
  if (!fetched) co_return fetched.error();
  ClientResponse& r = *fetched->response;
  if (r.status != 200) co_return upstream_status_error(r.status, Errc::kManifestUnknown);
  ++counters_.upstream_manifest_fetches;
  auto body = co_await r.read_all(kManifestLimit);
  if (!body) co_return body.error();
  auto media_type = manifest_media_type(r.headers.get("Content-Type").value_or(""), *body);
  if (!media_type) co_return media_type.error();

  Hasher hasher(expected ? expected->algorithm() : Digest::Algorithm::kSha256);
  hasher.update(body->data(), body->size());
  const Digest got = hasher.finish();
  std::optional<Digest> claimed = expected;
  if (!claimed) {
    if (auto header = r.headers.get("Docker-Content-Digest")) {
      if (auto parsed = Digest::parse(*header);
          parsed && parsed->algorithm() == Digest::Algorithm::kSha256) {
        claimed = std::move(*parsed);
      }
    }
  }
  if (claimed && !(got == *claimed)) {
    ++counters_.digest_mismatches;
    LOG_ERROR("{}/{} manifest {}: digest mismatch (bytes hash to {}); not cached", target.registry,
              repository, reference, got.str());
    co_return Error(Errc::kDigestMismatch, "upstream manifest does not match " + claimed->str());
  }
  if (auto s = store_.put_manifest(got, *media_type, *body); !s) {
    LOG_WARN("manifest {} verified but not cached: {}", got.str(), s.error().what());
  } else {
    store_.note_shown(got, target.registry, repository);
  }
  co_return ManifestAnswer{got, StoredManifest{std::move(*media_type), std::move(*body)},
                           fetched->source};
}

void ManifestService::remember_tag(const UpstreamTarget& target, const std::string& repository,
                                   const std::string& tag, const ManifestAnswer& answer) {
  const TagRecord record{answer.digest, answer.manifest.media_type, answer.manifest.bytes.size(),
                         clock_.now()};
  if (auto s = store_.put_tag(target.registry, repository, tag, record); !s) {
    LOG_WARN("tag {}:{} not cached: {}", repository, tag, s.error().what());
  }
  // The tag resolved to this digest in this repository: the manifest is shown there.
  store_.note_shown(answer.digest, target.registry, repository);
}

}  // namespace layerswarm::mirror
