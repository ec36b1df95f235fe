#include "common/mirror/manifest_policy.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace layerswarm::mirror {

using nlohmann::json;

namespace {

constexpr std::string_view kKnownTypes[] = {
    kOciManifest,
    kOciIndex,
    kDockerManifest,
    kDockerList,
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.oci.artifact.manifest.v1+json",
};

std::string normalise_content_type(std::string_view ct) {
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  while (!ct.empty() && ct.front() == ' ') ct.remove_prefix(1);
  std::string out(ct);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

bool is_availability_error(const Error& e) {
  if (e.code.category() != error_category()) return true;  // sockets, DNS, TLS
  return e.code == make_error_code(Errc::kUpstreamUnavailable) ||
         e.code == make_error_code(Errc::kTimeout) ||
         e.code == make_error_code(Errc::kTooManyRequests);
}

Result<std::string> manifest_media_type(std::string_view content_type, std::string_view bytes) {
  const json doc = json::parse(bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Error(Errc::kManifestInvalid, "upstream manifest is not a JSON object");
  }
  const std::string ct = normalise_content_type(content_type);
  for (auto known : kKnownTypes) {
    if (ct == known) return ct;
  }
  if (doc.contains("mediaType") && doc["mediaType"].is_string() &&
      !doc["mediaType"].get<std::string>().empty()) {
    return doc["mediaType"].get<std::string>();
  }
  if (doc.contains("schemaVersion") && doc["schemaVersion"] == 1) {
    return std::string(doc.contains("signatures") ? kKnownTypes[5] : kKnownTypes[4]);
  }
  if (doc.contains("manifests")) return std::string(kOciIndex);
  if (doc.contains("config") && doc.contains("layers")) return std::string(kOciManifest);
  return Error(Errc::kManifestInvalid, "cannot tell the manifest's media type");
}

TagDecision decide_tag(const std::optional<TagRecord>& record, TimePoint now,
                       std::chrono::milliseconds tag_ttl) {
  if (!record) return TagDecision::kRevalidate;
  const auto age = now - record->validated;
  // A validation time in the future (clock stepped back) is not trusted.
  if (age < std::chrono::milliseconds(0) || age >= tag_ttl) return TagDecision::kRevalidate;
  return TagDecision::kServeCached;
}

bool may_serve_stale(const TagRecord& record, TimePoint now, std::chrono::milliseconds max_stale,
                     const Error& error) {
  return is_availability_error(error) && now - record.validated <= max_stale;
}

}  // namespace layerswarm::mirror
