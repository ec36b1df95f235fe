// BlobSource over the upstream registries: GET/HEAD /v2/<repo>/blobs/<digest>.
#pragma once

#include "common/mirror/blob_source.h"
#include "common/mirror/upstreams.h"

namespace layerswarm::mirror {

class UpstreamBlobSource final : public BlobSource {
 public:
  explicit UpstreamBlobSource(Upstreams& upstreams) : upstreams_(upstreams) {}

  Task<Result<std::unique_ptr<BlobStream>>> open(BlobLocator blob, SteadyTime deadline) override;
  Task<Result<std::uint64_t>> stat(BlobLocator blob, SteadyTime deadline) override;

 private:
  Upstreams& upstreams_;
};

}  // namespace layerswarm::mirror
