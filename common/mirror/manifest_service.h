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

#include "common/async.h"
#include "common/clock.h"
#include "common/mirror/counters.h"
#include "common/mirror/manifest_policy.h"
#include "common/mirror/upstreams.h"
#include "common/store.h"

namespace layerswarm::mirror {

// The Accept header of every manifest request to an upstream: all the types a mirror serves.
inline constexpr const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

struct ManifestPolicy {
  std::chrono::milliseconds tag_ttl{30'000};
  std::chrono::milliseconds max_stale{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds response_timeout{20'000};
  // How long the upstream's word that a manifest is in a repository is trusted.
  std::chrono::milliseconds repository_check{600'000};
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
  // Per-repository access (docs/security.md), as BlobService::admit: a cached manifest is
  // handed out under `repository` only once the upstream gave or confirmed it there.
  Task<Status> admit(UpstreamTarget target, std::string repository, Digest digest);
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

}  // namespace layerswarm::mirror
