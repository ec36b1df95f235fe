// The agent <-> supernode swarm protocol, in one place for both sides (docs/architecture.md
// "The swarm protocol"). Every request carries the cluster token as a bearer token.
//
//   GET /swarm/v1/blobs/<digest>?ns=<registry>&repo=<repository>            the blob's layout
//   GET /swarm/v1/blobs/<digest>/chunks/<k>?ns=<registry>&repo=<repository> chunk k's metainfo
//   GET /swarm/v1/demand?after=<seq>                                          blobs in demand
//   POST /swarm/v1/certificate                                   a member certificate (closed site)
//
// The digest and chunk index are path segments of fixed grammar and the repository travels in
// the query, so a repository named `team/chunks` or `x/blobs/y` can never be mistaken for a
// chunk request (the old `/swarm/v1/<repo>/blobs/...` form could).
//
// Layout and chunk answers: 200 with the X-Layerswarm-* layout headers below (a chunk's body is
// its metainfo, application/x-bittorrent); 202 "not yet" with X-Layerswarm-Available (bytes the
// supernode holds so far); OCI error JSON otherwise.
//
// The demand feed (long-polled): {"next": <seq>, "blobs": [{"digest", "ns", "repo"}, ...]} lists
// blobs some agent started to download through the swarm after sequence number `after`. Agents
// holding one of them in their cache load its chunk torrents and seed them (lazy seeding:
// docs/architecture.md "Seeding what is in demand").
//
// The certificate request (a closed site, docs/security.md) carries the agent's public key,
// base64 of its DER SubjectPublicKeyInfo, in the Layerswarm-Public-Key header (the private key
// never leaves the agent). 200: {"certificate": PEM, "ca": PEM, "expires": unix seconds}; 404:
// the site is open (no certificates, a plaintext swarm).
//
// Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/result.h"

namespace layerswarm::swarm_protocol {

inline constexpr std::string_view kPrefix = "/swarm/v1/";
inline constexpr std::string_view kBlobSize = "X-Layerswarm-Blob-Size";
inline constexpr std::string_view kChunkSize = "X-Layerswarm-Chunk-Size";
inline constexpr std::string_view kChunks = "X-Layerswarm-Chunks";
inline constexpr std::string_view kPieceSize = "X-Layerswarm-Piece-Size";
// Chunk 0's piece size, when it differs from the others' (absent: kPieceSize).
inline constexpr std::string_view kFirstPieceSize = "X-Layerswarm-First-Piece-Size";
inline constexpr std::string_view kSeedPort = "X-Layerswarm-Seed-Port";
inline constexpr std::string_view kAvailable = "X-Layerswarm-Available";
inline constexpr std::string_view kMetainfoType = "application/x-bittorrent";
inline constexpr std::string_view kCertificatePath = "/swarm/v1/certificate";
inline constexpr std::string_view kPublicKey = "Layerswarm-Public-Key";
inline constexpr std::size_t kMaxPublicKey = 1024;  // base64 characters
// Bounds of what an agent accepts: a chunk's metainfo, the number of chunks of one blob.
inline constexpr std::size_t kMaxMetainfo = 4 << 20;
inline constexpr std::size_t kMaxChunks = 1 << 20;
// The longest demand answer (entries): a feed further behind restarts from the newest.
inline constexpr std::size_t kMaxDemandEntries = 4096;

struct BlobRef {
  std::string registry;    // canonical registry name; "" for the supernode's default upstream
  std::string repository;  // grammar-checked
  Digest digest;
};

struct Request {
  enum class Kind { kLayout, kChunk, kDemand };
  Kind kind = Kind::kLayout;
  std::optional<BlobRef> blob;  // kLayout, kChunk
  std::size_t chunk = 0;        // kChunk
  std::uint64_t after = 0;      // kDemand
};

// Request targets (path and query), percent-encoded.
std::string layout_target(const BlobRef& blob);
std::string chunk_target(const BlobRef& blob, std::size_t k);
std::string demand_target(std::uint64_t after);

// Whether `target` is a swarm API path at all.
bool is_swarm_target(std::string_view target);
// Parses a swarm API target. Errors: kNotFound (not a swarm path, bad chunk index),
// kNameInvalid (repository or registry outside the grammar), kDigestInvalid.
Result<Request> parse_target(std::string_view target);

struct Demand {
  std::uint64_t next = 0;
  std::vector<BlobRef> blobs;
};
std::string demand_body(const Demand& demand);
// Errors: kBadUpstreamResponse; entries with a bad digest or name are dropped.
Result<Demand> parse_demand(std::string_view body);

}  // namespace layerswarm::swarm_protocol
