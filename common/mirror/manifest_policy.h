// Manifest and tag policy as plain functions (STYLE.md 13): media types, when a cached tag
// answers, when a stale one may stand in. Pure; safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "common/store.h"

namespace layerswarm::mirror {

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
// The upstream could not be asked (unreachable, timed out, 5xx, 429), as opposed to an answer.
bool is_availability_error(const Error& error);
// Whether a cached tag may stand in for an upstream that failed with `error`.
bool may_serve_stale(const TagRecord& record, TimePoint now, std::chrono::milliseconds max_stale,
                     const Error& error);

}  // namespace layerswarm::mirror
