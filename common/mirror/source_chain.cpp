#include "common/mirror/source_chain.h"

#include "common/log.h"
#include "common/metrics.h"

namespace layerswarm::mirror {

bool is_handover_error(const Error& error) {
  return error.code != make_error_code(Errc::kBlobUnknown) &&
         error.code != make_error_code(Errc::kNameUnknown);
}

bool is_decline(const Error& error) { return error.code == make_error_code(Errc::kUnsupported); }

Task<Result<SourceChain::Opened>> SourceChain::open_from(std::size_t first, BlobLocator blob,
                                                         std::uint64_t offset, SteadyTime deadline,
                                                         int file) {
  Error last(Errc::kUpstreamUnavailable, "no source for the blob");
  std::size_t fallbacks = 0;
  for (std::size_t i = first; i < sources_.size(); ++i) {
    // A source with another after it gets half the time left: a hanging one must not use up
    // the time of the next.
    SteadyTime until = deadline;
    const auto now = std::chrono::steady_clock::now();
    if (i + 1 < sources_.size() && deadline > now) until = now + (deadline - now) / 2;
    auto stream = co_await sources_[i]->open(blob, offset, until, file);
    if (stream) co_return Opened{std::move(*stream), i, fallbacks};
    last = stream.error();
    if (!is_handover_error(last)) break;
    if (is_decline(last)) {
      LOG_DEBUG("blob {}: {} declines it ({})", blob.digest.str(), sources_[i]->name(),
                last.what());
      continue;
    }
    ++fallbacks;
    if (i + 1 < sources_.size()) {
      Metrics::get().source_fallback(sources_[i]->name(), sources_[i + 1]->name());
      LOG_WARN("blob {}: {} cannot serve it ({}); trying {}", blob.digest.str(),
               sources_[i]->name(), last.what(), sources_[i + 1]->name());
    }
  }
  co_return last;
}

Task<Result<std::unique_ptr<BlobStream>>> SourceChain::open(BlobLocator blob, std::uint64_t offset,
                                                            SteadyTime deadline, int file) {
  auto opened = co_await open_from(0, std::move(blob), offset, deadline, file);
  if (!opened) co_return opened.error();
  co_return std::move(opened->stream);
}

Task<Result<std::uint64_t>> SourceChain::stat(BlobLocator blob, SteadyTime deadline) {
  Error last(Errc::kUpstreamUnavailable, "no source for the blob");
  for (BlobSource* source : sources_) {
    auto size = co_await source->stat(blob, deadline);
    if (size) co_return size;
    last = size.error();
    if (!is_handover_error(last)) break;
  }
  co_return last;
}

}  // namespace layerswarm::mirror
