// What the agent counts (the seam for the metrics issue). Atomic: read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace layerswarm::mirror {

struct Counters {
  std::atomic<std::uint64_t> requests{0};
  // Responses that failed the client: a 5xx status, or a body cut short (aborted_responses
  // counts those alone). Refusals and absences (4xx) are client_errors.
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> client_errors{0};
  std::atomic<std::uint64_t> cache_hits{0};  // manifests and blobs answered from disk
  std::atomic<std::uint64_t> upstream_blob_fetches{0};
  std::atomic<std::uint64_t> upstream_manifest_fetches{0};
  std::atomic<std::uint64_t> tag_revalidations{0};
  std::atomic<std::uint64_t> stale_served{0};
  std::atomic<std::uint64_t> digest_mismatches{0};
  std::atomic<std::uint64_t> aborted_responses{0};
  std::atomic<std::uint64_t> bytes_from_cache{0};
  std::atomic<std::uint64_t> bytes_from_upstream{0};  // the registry itself
  std::atomic<std::uint64_t> bytes_from_supernode{0};
  std::atomic<std::uint64_t> bytes_from_swarm{0};  // peers and the supernode over BitTorrent
  std::atomic<std::uint64_t> source_switches{0};   // a download that moved to the next source
  // A source that could not serve a download (unreachable, stalled, refusing), so the next
  // one was asked; a source declining a blob by policy (the swarm, small blobs) is not one.
  std::atomic<std::uint64_t> source_fallbacks{0};
  // The cache's lifecycle (docs/architecture.md "The cache's lifecycle").
  std::atomic<std::uint64_t> evicted_blobs{0};
  std::atomic<std::uint64_t> evicted_bytes{0};
  std::atomic<std::uint64_t> uncached_blobs{0};  // verified and served, but not stored (no room)
  std::atomic<std::uint64_t> corrupt_blobs{0};   // quarantined: changed or rotten on disk
  std::atomic<std::uint64_t> scrubbed_bytes{0};
  std::atomic<std::uint64_t> resumed_bytes{0};  // taken from partial files of earlier downloads

  std::string summary() const;
};

}  // namespace layerswarm::mirror
