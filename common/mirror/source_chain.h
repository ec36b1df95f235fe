// Sources of blob bytes tried in order (swarm, supernode, upstream): "a pull never fails while
// any source works". A source that cannot serve now (unreachable, timing out, refusing, broken
// answer) hands over to the next; an authoritative "no such blob" (404) ends the search.
// The fetcher also uses it to resume a transfer that broke mid-stream on the next source, from
// the byte it had reached.
//
// Threading: the io_context thread.
#pragma once

#include <vector>

#include "common/mirror/blob_source.h"

namespace layerswarm::mirror {

// Whether a source's failure lets the next source try (everything but a 404-type answer).
bool is_handover_error(const Error& error);
// A source declines a blob it does not serve by policy with kUnsupported: the next source is
// asked without a warning.
bool is_decline(const Error& error);

class SourceChain final : public BlobSource {
 public:
  struct Opened {
    std::unique_ptr<BlobStream> stream;
    std::size_t index = 0;      // which source
    std::size_t fallbacks = 0;  // sources before it that failed (not those that declined)
  };

  // Sources in order of preference; they must outlive the chain.
  explicit SourceChain(std::vector<BlobSource*> sources) : sources_(std::move(sources)) {}

  std::size_t size() const { return sources_.size(); }
  std::string_view name() const override { return "chain"; }

  // Tries sources from `first` on. Errors: the last source's error, or the first final one.
  Task<Result<Opened>> open_from(std::size_t first, BlobLocator blob, std::uint64_t offset,
                                 SteadyTime deadline, int file);

  Task<Result<std::unique_ptr<BlobStream>>> open(BlobLocator blob, std::uint64_t offset,
                                                 SteadyTime deadline, int file) override;
  Task<Result<std::uint64_t>> stat(BlobLocator blob, SteadyTime deadline) override;

 private:
  std::vector<BlobSource*> sources_;
};

}  // namespace layerswarm::mirror
