// Manifests for the mirror (PROTOCOL.md 2, 4, 5):
// - by digest: immutable; from the cache, else one upstream GET (single flight), verified and
//   stored before it is served;
// - by tag: a tag never seen is fetched with one GET; a cached tag is answered from the cache
//   while younger than tag_ttl, then revalidated with an upstream HEAD (a GET only when the
//   digest changed, or when the upstream sends no digest);
//   when the upstream is unreachable, times out, or answers 5xx/429, the cached tag is served
//   while younger than max_stale.
// Upstream requests always carry the full Accept list; the cache does not depend on the
// client's Accept.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <string>

#include "agent/counters.h"
#include "agent/upstreams.h"
#include "common/async.h"
#include "common/clock.h"
#include "common/store.h"

namespace layerswarm::agent {

inline constexpr std::size_t kManifestLimit = 4 << 20;

// Known manifest media types.
inline constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

// The media type to serve `bytes` with: the upstream's Content-Type (parameters dropped) when
// it names a manifest type, else the document's mediaType, else inferred from its shape.
// Errors: kManifestInvalid (not a JSON object, or no type can be found).
Result<std::string> manifest_media_type(std::string_view content_type, std::string_view bytes);

// What to do with a cached tag (pure policy, for tests with an injected clock).
enum class TagDecision { kServeCached, kRevalidate };
TagDecision decide_tag(const std::optional<TagRecord>& record, TimePoint now,
                       std::chrono::milliseconds tag_ttl);
// Whether a cached tag may stand in for an upstream that failed with `error`.
bool may_serve_stale(const TagRecord& record, TimePoint now, std::chrono::milliseconds max_stale,
                     const Error& error);

struct ManifestPolicy {
  std::chrono::milliseconds tag_ttl{30'000};
  std::chrono::milliseconds max_stale{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds response_timeout{20'000};
};

struct ManifestAnswer {
  Digest digest;
  StoredManifest manifest;
  std::string source;  // cache | upstream | revalidated | stale
};

class ManifestService {
 public:
  ManifestService(Store& store, const Clock& clock, Counters& counters, ManifestPolicy policy);

  // Errors: kManifestUnknown, kDenied, kUnauthorized, kTooManyRequests, kUpstreamUnavailable,
  // kTimeout, kDigestMismatch, kManifestInvalid, kTooLarge, kStorage.
  Task<Result<ManifestAnswer>> by_digest(UpstreamTarget target, std::string repository,
                                         Digest digest);
  Task<Result<ManifestAnswer>> by_tag(UpstreamTarget target, std::string repository,
                                      std::string tag);

 private:
  Task<Result<ManifestAnswer>> fetch(UpstreamTarget target, std::string repository,
                                     std::string reference, std::optional<Digest> expected,
                                     SteadyTime deadline);
  Task<Result<ManifestAnswer>> revalidate(UpstreamTarget target, std::string repository,
                                          std::string tag);
  Task<Result<ManifestAnswer>> resolve_tag(UpstreamTarget target, std::string repository,
                                           std::string tag, std::optional<TagRecord> cached);
  Result<ManifestAnswer> from_cache(const Digest& digest, std::string source);
  void remember_tag(const UpstreamTarget& target, const std::string& repository,
                    const std::string& tag, const ManifestAnswer& answer);

  Store& store_;
  const Clock& clock_;
  Counters& counters_;
  ManifestPolicy policy_;
  SingleFlight<Result<ManifestAnswer>> flights_;
};

}  // namespace layerswarm::agent
