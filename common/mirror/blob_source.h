// Where blob bytes come from: the seam between the cache and its sources. The upstream
// registry (UpstreamBlobSource), the supernode over HTTP (the same class pointed at the
// supernode), and the swarm are implementations; a SourceChain tries them in order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/async.h"
#include "common/digest.h"
#include "common/result.h"

namespace layerswarm::mirror {

struct BlobLocator {
  std::string registry;    // canonical registry name
  std::string repository;  // canonical repository name
  Digest digest;
};

// The bytes of one blob from some offset on, in order, as a source delivers them. Unverified:
// the reader hashes them.
class BlobStream {
 public:
  virtual ~BlobStream() = default;
  // The whole blob's size as the source announced it, if it did.
  virtual std::optional<std::uint64_t> size() const = 0;
  // For logs: "upstream", "supernode", later "swarm".
  virtual std::string_view source() const = 0;
  // Reads up to `n` bytes; 0 at the end. Errors: the source's transport errors, kTimeout.
  virtual Task<Result<std::size_t>> read_some(char* buf, std::size_t n) = 0;
  // True when the source writes the bytes into the download's file itself (the swarm): what
  // read_some returns is already there, for hashing only.
  virtual bool in_place() const { return false; }
  // The blob this stream delivered passed its digest check and is in the cache now (the
  // swarm keeps seeding it). Not called when the stream was abandoned or the check failed.
  virtual void cached() {}
  // `observer` is called whenever the source makes progress that read_some cannot show yet
  // (the swarm verified a piece past the contiguous prefix), so that readers waiting on the
  // download can tell a slow transfer from a stalled one. Sources that deliver in order
  // ignore it. Called on the io thread; never after the stream is destroyed.
  virtual void on_activity(std::function<void()> observer) { (void)observer; }
};

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  virtual std::string_view name() const = 0;
  // Starts delivering the blob from byte `offset` (0: all of it); returns once the source
  // answered. Nothing past `deadline` is waited for. `file` is the download's file (an
  // in-place source writes into it; it stays open while the stream lives).
  // Errors: kBlobUnknown, kDenied, kUpstreamUnavailable, kTooManyRequests, kTimeout,
  // kBadUpstreamResponse.
  virtual Task<Result<std::unique_ptr<BlobStream>>> open(BlobLocator blob, std::uint64_t offset,
                                                         SteadyTime deadline, int file) = 0;
  // The blob's size without fetching it. Errors: as open().
  virtual Task<Result<std::uint64_t>> stat(BlobLocator blob, SteadyTime deadline) = 0;
};

}  // namespace layerswarm::mirror
