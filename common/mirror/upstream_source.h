// BlobSource over registries: GET/HEAD /v2/<repo>/blobs/<digest>, from an offset with a Range
// request. Pointed at the upstream registries, or (with Upstreams in supernode mode) at the
// supernode.
#pragma once

#include <string>

#include "common/mirror/blob_source.h"
#include "common/mirror/upstreams.h"

namespace layerswarm::mirror {

class UpstreamBlobSource final : public BlobSource {
 public:
  // `name` is what logs call the source ("upstream", "supernode").
  UpstreamBlobSource(Upstreams& upstreams, std::string name)
      : upstreams_(upstreams), name_(std::move(name)) {}

  std::string_view name() const override { return name_; }
  Task<Result<std::unique_ptr<BlobStream>>> open(BlobLocator blob, std::uint64_t offset,
                                                 SteadyTime deadline, int file) override;
  Task<Result<std::uint64_t>> stat(BlobLocator blob, SteadyTime deadline) override;

 private:
  Upstreams& upstreams_;
  std::string name_;
};

// "bytes a-b/total" -> {a, total}. nullopt when malformed or the total is unknown ("*").
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_content_range(std::string_view v);

}  // namespace layerswarm::mirror
