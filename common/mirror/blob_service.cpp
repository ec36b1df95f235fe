#include "common/mirror/blob_service.h"

#include "common/mirror/repository_access.h"
#include "common/mirror/responses.h"
#include "common/range.h"

namespace layerswarm::mirror {
namespace {

bool timed_out(SteadyTime deadline) { return std::chrono::steady_clock::now() >= deadline; }

ResponseHead blob_head(const Digest& digest) {
  ResponseHead head;
  head.headers.add("Content-Type", "application/octet-stream");
  head.headers.add("Docker-Content-Digest", digest.str());
  head.headers.add("Accept-Ranges", "bytes");
  head.headers.add("ETag", "\"" + digest.str() + "\"");
  head.headers.add("Cache-Control", "max-age=31536000");
  return head;
}

// The head for `range` of a blob of `size` bytes; nullopt when the range is unsatisfiable.
std::optional<ResponseHead> ranged_head(const Digest& digest, const HttpRequest& request,
                                        std::uint64_t size, ByteRange& out_range) {
  const RangeRequest rr = parse_range(request.headers.get("Range"), size);
  if (rr.kind == RangeRequest::Kind::kUnsatisfiable) return std::nullopt;
  ResponseHead head = blob_head(digest);
  if (rr.kind == RangeRequest::Kind::kPartial) {
    head.status = 206;
    head.headers.add("Content-Range", content_range(rr.range, size));
    out_range = rr.range;
    head.content_length = rr.range.length();
  } else {
    out_range = ByteRange{0, size == 0 ? 0 : size - 1};
    head.content_length = size;
  }
  return head;
}

Task<void> send_unsatisfiable(ResponseWriter& out, std::uint64_t size, RequestLog& log) {
  const Error error(Errc::kRangeInvalid,
                    "range not satisfiable for a blob of " + std::to_string(size) + " bytes");
  const std::string body = oci_error_body(error.code, error.message);
  ResponseHead head;
  head.status = 416;
  head.headers.add("Content-Type", "application/json");
  head.headers.add("Content-Range", "bytes */" + std::to_string(size));
  log.error = error.message;
  co_await send_body(out, std::move(head), body, log);
}

}  // namespace

BlobService::BlobService(Store& store, BlobFetcher& fetcher, BlobSource& source, Counters& counters,
                         const Clock& clock, BlobServiceOptions options)
    : store_(store),
      fetcher_(fetcher),
      source_(source),
      counters_(counters),
      clock_(clock),
      options_(options) {}

Task<Status> BlobService::admit(const BlobLocator& blob) {
  const Shown shown = shown_in(store_, clock_, blob.digest, blob.registry, blob.repository,
                               options_.repository_check);
  if (shown.fresh) co_return Status{};
  if (auto fetch = fetcher_.find(blob.digest);
      fetch && fetch->registry() == blob.registry && fetch->repository() == blob.repository) {
    co_return Status{};  // being fetched for this very repository
  }
  auto stat = co_await source_.stat(blob, deadline_after(options_.head_timeout));
  const Status answer = stat ? Status{} : Status(stat.error());
  co_return settle(store_, blob.digest, blob.registry, blob.repository, shown, answer,
                   Errc::kBlobUnknown);
}

Task<void> BlobService::serve(BlobLocator blob, const HttpRequest& request, ResponseWriter& out,
                              RequestLog& log) {
  auto cached = store_.open_blob(blob.digest);
  const auto running = cached ? nullptr : fetcher_.find(blob.digest);
  if (cached || running) {
    // Held (or being fetched) for some repository: this one must be shown to hold it too.
    auto admitted = co_await admit(blob);
    if (!admitted) {
      log.source = "check";
      co_await send_error(out, admitted.error(), log);
      co_return;
    }
  }
  if (cached) {
    // Not evicted while it is being sent (the file would stay until the send ends anyway,
    // but its space would not count).
    Store::Hold hold = store_.hold(blob.digest);
    store_.touch(blob.digest, cached->accessed_ms);
    ++counters_.cache_hits;
    log.source = "cache";
    co_await serve_file(blob.digest, std::move(*cached), request, out, log);
    co_return;
  }
  if (request.is_head()) {
    co_await serve_head_miss(std::move(blob), out, log);
    co_return;
  }
  const bool joined = fetcher_.find(blob.digest) != nullptr;
  auto fetch = fetcher_.join(blob);
  co_await serve_fetch(fetch, blob.digest, request, out, log);
  // Where the bytes came from (a fetch may have switched sources midway): "inflight" for a
  // request that joined another's download.
  log.source = joined ? "inflight" : fetch->source();
}

Task<void> BlobService::serve_file(const Digest& digest, OpenBlob blob, const HttpRequest& request,
                                   ResponseWriter& out, RequestLog& log) {
  ByteRange range;
  auto head = ranged_head(digest, request, blob.size, range);
  if (!head) {
    co_await send_unsatisfiable(out, blob.size, log);
    co_return;
  }
  log.status = head->status;
  const std::uint64_t length = head->content_length;
  const auto head_ec = co_await out.write_head(std::move(*head));
  if (head_ec) co_return;
  if (length > 0) {
    const auto ec = co_await out.write_file(blob.fd.get(), range.first, length);
    if (ec) log.error = "client: " + ec.message();
  }
  log.bytes = out.body_bytes();
  counters_.bytes_from_cache += out.body_bytes();
}

Task<void> BlobService::serve_head_miss(BlobLocator blob, ResponseWriter& out, RequestLog& log) {
  std::optional<std::uint64_t> size;
  if (auto fetch = fetcher_.find(blob.digest); fetch && fetch->size()) {
    size = fetch->size();
    log.source = "inflight";
  } else {
    log.source = "upstream";
    auto stat = co_await source_.stat(blob, deadline_after(options_.head_timeout));
    if (!stat) {
      co_await send_error(out, stat.error(), log);
      co_return;
    }
    size = *stat;
  }
  ResponseHead head = blob_head(blob.digest);
  head.content_length = *size;
  log.status = 200;
  co_await out.write_head(std::move(head));
}

Task<void> BlobService::serve_fetch(std::shared_ptr<BlobFetch> fetch, const Digest& digest,
                                    const HttpRequest& request, ResponseWriter& out,
                                    RequestLog& log) {
  // Where this response is, from the start: an uncached fetch keeps its window's bytes for it.
  std::uint64_t pos = 0;
  BlobFetch::Reader reader(*fetch, &pos);
  // Headers need the size: wait for the source's answer (or, when it announced none, or the
  // blob is empty and so complete with its headers, for the verified end).
  const SteadyTime deadline = deadline_after(options_.head_timeout);
  auto ready = [&] {
    const auto s = fetch->state();
    if (s == BlobFetch::State::kVerified || s == BlobFetch::State::kFailed) return true;
    return s == BlobFetch::State::kStreaming && fetch->size() && *fetch->size() > 0;
  };
  while (!ready() && !timed_out(deadline)) {
    co_await fetch->progress().wait_until(deadline);
  }
  if (fetch->state() == BlobFetch::State::kFailed) {
    co_await send_error(out, fetch->error(), log);
    co_return;
  }
  if (!ready()) {
    Error timeout(Errc::kTimeout, "the source did not answer in time");
    co_await send_error(out, std::move(timeout), log);
    co_return;
  }
  const std::uint64_t size = *fetch->size();
  ByteRange range;
  auto head = ranged_head(digest, request, size, range);
  if (!head) {
    co_await send_unsatisfiable(out, size, log);
    co_return;
  }
  log.status = head->status;
  const std::uint64_t length = head->content_length;
  const auto head_ec = co_await out.write_head(std::move(*head));
  if (head_ec) co_return;
  pos = range.first;
  if (length > 0) co_await stream(*fetch, pos, range.last + 1, out, log);
  log.bytes = out.body_bytes();
}

// Sends [pos, end) of the growing file (or, for an uncached fetch, of the file and then the
// window), holding back the last byte until kVerified. `pos` advances as bytes go out.
Task<void> BlobService::stream(BlobFetch& fetch, std::uint64_t& pos, std::uint64_t end,
                               ResponseWriter& out, RequestLog& log) {
  SteadyTime stall_deadline = deadline_after(options_.response_stall_timeout);
  while (pos < end) {
    const auto state = fetch.state();
    if (state == BlobFetch::State::kFailed) {
      ++counters_.aborted_responses;
      log.error = "aborted: " + fetch.error().what();
      out.abort();
      co_return;
    }
    const std::uint64_t limit =
        state == BlobFetch::State::kVerified ? end : std::min(end - 1, fetch.available());
    if (pos < limit) {
      std::uint64_t to = limit;
      boost::system::error_code ec;
      if (fetch.uncached() && pos >= fetch.file_limit()) {
        if (pos < fetch.window_begin()) {
          // Too slow for an uncached download: its bytes are gone.
          ++counters_.aborted_responses;
          log.error = "aborted: the client fell behind an uncached download";
          out.abort();
          co_return;
        }
        // A copy: the window may move while the write is under way.
        to = std::min({limit, fetch.window_end(), pos + (1 << 20)});
        const std::string bytes(fetch.window(pos, to));
        ec = co_await out.write_body(bytes);
      } else {
        if (fetch.uncached()) to = std::min(limit, fetch.file_limit());
        ec = co_await out.write_file(fetch.fd(), pos, to - pos);
      }
      if (ec) {
        log.error = "client: " + ec.message();
        co_return;
      }
      pos = to;
      fetch.consumed();
      stall_deadline = deadline_after(options_.response_stall_timeout);
      continue;
    }
    const bool woken = co_await fetch.progress().wait_until(stall_deadline);
    if (!woken && timed_out(stall_deadline)) {
      // No new byte for this response, but the source still makes progress out of order (the
      // swarm): slow, not stalled. The source's own stall limit decides when it hands over.
      const SteadyTime alive_until = fetch.last_activity() + options_.response_stall_timeout;
      if (alive_until > std::chrono::steady_clock::now()) {
        stall_deadline = alive_until;
        continue;
      }
      ++counters_.aborted_responses;
      log.error = "aborted: the source stalled";
      out.abort();
      co_return;
    }
  }
}

}  // namespace layerswarm::mirror
