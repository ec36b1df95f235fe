#include "common/mirror/upstream_source.h"

namespace layerswarm::mirror {
namespace {

class UpstreamStream final : public BlobStream {
 public:
  explicit UpstreamStream(std::unique_ptr<ClientResponse> response)
      : response_(std::move(response)) {}
  std::optional<std::uint64_t> size() const override { return response_->content_length; }
  std::string_view source() const override { return "upstream"; }
  Task<Result<std::size_t>> read_some(char* buf, std::size_t n) override {
    return response_->read_some(buf, n);
  }

 private:
  std::unique_ptr<ClientResponse> response_;
};

UpstreamCall blob_call(const char* method, const BlobLocator& blob, SteadyTime deadline) {
  UpstreamCall call;
  call.method = method;
  call.repository = blob.repository;
  call.path = "blobs/" + blob.digest.str();
  call.deadline = deadline;
  return call;
}

}  // namespace

Task<Result<std::unique_ptr<BlobStream>>> UpstreamBlobSource::open(BlobLocator blob,
                                                                   SteadyTime deadline) {
  auto target = upstreams_.resolve(blob.registry);
  if (!target) co_return target.error();
  UpstreamCall call = blob_call("GET", blob, deadline);
  auto resp = co_await target->client->fetch(std::move(call));
  if (!resp) co_return resp.error();
  if ((*resp)->status != 200) {
    co_return upstream_status_error((*resp)->status, Errc::kBlobUnknown);
  }
  co_return std::unique_ptr<BlobStream>(std::make_unique<UpstreamStream>(std::move(*resp)));
}

Task<Result<std::uint64_t>> UpstreamBlobSource::stat(BlobLocator blob, SteadyTime deadline) {
  auto target = upstreams_.resolve(blob.registry);
  if (!target) co_return target.error();
  UpstreamCall call = blob_call("HEAD", blob, deadline);
  auto resp = co_await target->client->fetch(std::move(call));
  if (!resp) co_return resp.error();
  if ((*resp)->status != 200) {
    co_return upstream_status_error((*resp)->status, Errc::kBlobUnknown);
  }
  if (!(*resp)->content_length) {
    co_return Error(Errc::kBadUpstreamResponse, "upstream HEAD without Content-Length");
  }
  co_return *(*resp)->content_length;
}

}  // namespace layerswarm::mirror
