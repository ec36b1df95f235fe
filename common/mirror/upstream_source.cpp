#include "common/mirror/upstream_source.h"

#include <charconv>

namespace layerswarm::mirror {
namespace {

class UpstreamStream final : public BlobStream {
 public:
  // `skip`: bytes to drop first (a server that ignored the Range sent the whole blob).
  UpstreamStream(std::unique_ptr<ClientResponse> response, std::optional<std::uint64_t> size,
                 std::uint64_t skip, std::string_view source)
      : response_(std::move(response)), size_(size), skip_(skip), source_(source) {}
  std::optional<std::uint64_t> size() const override { return size_; }
  std::string_view source() const override { return source_; }
  Task<Result<std::size_t>> read_some(char* buf, std::size_t n) override {
    for (int i = 0; i < 1'000'000 && skip_ > 0; ++i) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, skip_));
      auto got = co_await response_->read_some(buf, want);
      if (!got) co_return got.error();
      if (*got == 0) co_return Error(Errc::kBadUpstreamResponse, "body ended before the offset");
      skip_ -= *got;
    }
    co_return co_await response_->read_some(buf, n);
  }

 private:
  std::unique_ptr<ClientResponse> response_;
  std::optional<std::uint64_t> size_;
  std::uint64_t skip_;
  std::string_view source_;
};

UpstreamCall blob_call(const char* method, const BlobLocator& blob, SteadyTime deadline) {
  UpstreamCall call;
  call.method = method;
  call.repository = blob.repository;
  call.path = "blobs/" + blob.digest.str();
  call.deadline = deadline;
  return call;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_content_range(std::string_view v) {
  if (v.substr(0, 6) != "bytes ") return std::nullopt;
  v.remove_prefix(6);
  const auto dash = v.find('-');
  const auto slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) {
    return std::nullopt;
  }
  const auto first = to_u64(v.substr(0, dash));
  const auto total = to_u64(v.substr(slash + 1));
  if (!first || !total) return std::nullopt;
  return std::make_pair(*first, *total);
}

Task<Result<std::unique_ptr<BlobStream>>> UpstreamBlobSource::open(BlobLocator blob,
                                                                   std::uint64_t offset,
                                                                   SteadyTime deadline, int) {
  auto target = upstreams_.resolve(blob.registry);
  if (!target) co_return target.error();
  UpstreamCall call = blob_call("GET", blob, deadline);
  if (offset > 0) call.headers.add("Range", "bytes=" + std::to_string(offset) + "-");
  auto resp = co_await target->client->fetch(std::move(call));
  if (!resp) co_return resp.error();
  ClientResponse& r = **resp;
  std::optional<std::uint64_t> size = r.content_length;
  std::uint64_t skip = 0;
  if (offset > 0 && r.status == 206) {
    const auto range = parse_content_range(r.headers.get("Content-Range").value_or(""));
    if (!range || range->first != offset) {
      co_return Error(Errc::kBadUpstreamResponse, name_ + " answered another range");
    }
    size = range->second;
  } else if (r.status == 200) {
    skip = offset;  // the whole blob: drop what we have
  } else {
    co_return upstream_status_error(r.status, Errc::kBlobUnknown);
  }
  co_return std::unique_ptr<BlobStream>(
      std::make_unique<UpstreamStream>(std::move(*resp), size, skip, name_));
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
    co_return Error(Errc::kBadUpstreamResponse, "HEAD without Content-Length");
  }
  co_return *(*resp)->content_length;
}

}  // namespace layerswarm::mirror
