// What the agent counts (the seam for the metrics issue). Atomic: read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace layerswarm::mirror {

struct Counters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> errors{0};      // responses >= 400
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

  std::string summary() const;
};

}  // namespace layerswarm::mirror
