// What a mirror (the agent, and the supernode) needs to know about its upstreams and cache:
// the configuration keys the two binaries share (docs/configuration.md). Parsed from the top
// level of either binary's JSON document.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/reference.h"
#include "common/registry_config.h"
#include "common/result.h"
#include "common/size.h"

namespace layerswarm::mirror {

using Millis = std::chrono::milliseconds;

// A pinned image (cache.pins).
struct PinSpec {
  ImageReference image;
  std::vector<std::string> platforms;  // "os/arch[/variant]"; empty: every platform
};

struct MirrorOptions {
  // The upstream for requests that name none: a URL, or a host in the registries table.
  std::string upstream = "https://registry-1.docker.io";
  Registries registries;
  // Requests may name registries missing from the table (reached over https, anonymously).
  bool allow_unlisted_registries = true;

  struct Cache {
    Millis ttl = std::chrono::hours(24 * 7);        // unused objects are removed after this
    Millis tag_ttl = std::chrono::seconds(30);      // tags answered without asking upstream
    Millis max_stale = std::chrono::hours(24 * 7);  // tags served while upstream is down
    Millis sweep_interval = std::chrono::hours(1);
    // Per-repository access (docs/security.md): the upstream's word that an object is in a
    // repository is trusted this long, then asked again (a HEAD).
    Millis repository_check = std::chrono::minutes(10);
    // The disk budget (docs/configuration.md "The cache's lifecycle"): blobs are evicted, least
    // recently used first, down to evict_to (a share of max_size, or bytes) as soon as the
    // cache crosses max_size (bytes, or a share of the filesystem). None: no budget (TTL only).
    std::optional<SizeSpec> max_size;
    SizeSpec evict_to{0, 0.9, true};
    // The scrub: every blob is hashed again once per interval, at most scrub_rate bytes/s.
    Millis scrub_interval = std::chrono::hours(24 * 7);
    std::uint64_t scrub_rate = 16 << 20;
    // How often a read-only cache (started on a full disk) checks whether space returned.
    Millis space_check_interval = std::chrono::seconds(10);
    // Images fetched at start, refreshed every pin_refresh, never evicted.
    std::vector<PinSpec> pins;
    Millis pin_refresh = std::chrono::minutes(10);
  } cache;

  // How long a client credential's answer from the registry (allowed or not, per repository)
  // is reused for registries with authorize_clients.
  Millis authorize_ttl = std::chrono::seconds(60);

  struct UpstreamClient {
    Millis connect_timeout = std::chrono::seconds(10);
    Millis read_timeout = std::chrono::seconds(30);
    // Until the upstream's answer (all retries and auth included); clients time out at 30 s.
    Millis response_timeout = std::chrono::seconds(20);
    std::uint64_t retries = 3;
    // How blob downloads from one registry share the link to it (common/mirror/upstream_turns.h):
    // "smallest-first" (the one with the fewest bytes left reads, the others trickle) or
    // "shared" (all at once). Empty: smallest-first where the node fetches from the registry
    // itself (a supernode, a stand-alone agent), shared behind a supernode.
    std::string blob_order;
  } upstream_client;
};

// The keys of MirrorOptions that parse_mirror_options() reads from a document's top level.
inline constexpr const char* kMirrorKeys[] = {"upstream", "registries", "allow_unlisted_registries",
                                              "cache", "upstream_client"};

// Reads the mirror keys present in `doc` into `out`. Errors: kConfigInvalid naming the key.
Status parse_mirror_options(const nlohmann::json& doc, MirrorOptions& out);
// A list of pins as cache.pins takes it (references, or {"image", "platforms"} objects);
// error messages start with `where`.
Status parse_pin_list(const nlohmann::json& list, const std::string& where,
                      std::vector<PinSpec>& out);
// "os/arch" or "os/arch/variant".
bool valid_platform(const std::string& platform);
// Applies HOST=URL specs (--registry). Errors: kConfigInvalid.
Status apply_registry_flags(const std::vector<std::string>& specs, MirrorOptions& out);
// Checks values and cross-references. Errors: kConfigInvalid.
Status validate_mirror_options(const MirrorOptions& o);

}  // namespace layerswarm::mirror
