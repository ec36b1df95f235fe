#include "common/mirror/counters.h"

#include "common/registry_client.h"

namespace layerswarm::mirror {

std::string Counters::summary() const {
  auto field = [](const char* name, const std::atomic<std::uint64_t>& v) {
    return std::string(name) + "=" + std::to_string(v.load()) + " ";
  };
  std::string s =
      field("requests", requests) + field("errors", errors) +
      field("client_errors", client_errors) + field("cache_hits", cache_hits) +
      field("upstream_blob_fetches", upstream_blob_fetches) +
      field("upstream_manifest_fetches", upstream_manifest_fetches) +
      field("tag_revalidations", tag_revalidations) + field("stale_served", stale_served) +
      field("digest_mismatches", digest_mismatches) +
      field("aborted_responses", aborted_responses) + field("bytes_from_cache", bytes_from_cache) +
      field("bytes_from_upstream", bytes_from_upstream) +
      field("bytes_from_supernode", bytes_from_supernode) +
      field("bytes_from_swarm", bytes_from_swarm) + field("source_switches", source_switches) +
      field("source_fallbacks", source_fallbacks) + field("evicted_blobs", evicted_blobs) +
      field("evicted_bytes", evicted_bytes) + field("uncached_blobs", uncached_blobs) +
      field("corrupt_blobs", corrupt_blobs) + field("scrubbed_bytes", scrubbed_bytes) +
      field("resumed_bytes", resumed_bytes) +
      "upstreams_offline=" + std::to_string(reachability().offline.load()) + " " +
      "offline_episodes=" + std::to_string(reachability().episodes.load()) + " ";
  s.pop_back();
  return s;
}

}  // namespace layerswarm::mirror
