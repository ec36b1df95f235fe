#include "common/mirror/blob_fetch.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "common/log.h"

namespace layerswarm::mirror {
namespace {

// Reads of one download: a bound far past any blob (64 KiB reads: ~64 PiB).
constexpr long kMaxReads = 1L << 40;

// The state a download's pool jobs share with it (see BlobFetcher::download).
struct Pipeline {
  Pipeline(Digest::Algorithm algorithm, std::size_t buffer_size)
      : hasher(algorithm),
        buffers{std::vector<char>(buffer_size), std::vector<char>(buffer_size)} {}

  Task<void> wait_idle() {
    for (int i = 0; i < 1'000'000 && busy; ++i) {
      co_await idle.wait_until(deadline_after(std::chrono::seconds(60)));
    }
  }

  Hasher hasher;
  std::vector<char> buffers[2];  // one being read into while the other is hashed and written
  bool busy = false;             // a job is on the pool (io thread only)
  Status status;                 // the first failed write
  Notifier idle;
};

Status pwrite_all(int fd, const char* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Error(Errc::kStorage, std::string("writing a download: ") + std::strerror(errno));
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

}  // namespace

BlobFetcher::BlobFetcher(asio::any_io_executor executor, Store& store, SourceChain& sources,
                         asio::thread_pool& pool, Counters& counters, FetchOptions options)
    : executor_(std::move(executor)),
      store_(store),
      sources_(sources),
      pool_(pool),
      counters_(counters),
      options_(options) {}

std::shared_ptr<BlobFetch> BlobFetcher::find(const Digest& digest) const {
  auto it = inflight_.find(digest.str());
  return it == inflight_.end() ? nullptr : it->second;
}

std::shared_ptr<BlobFetch> BlobFetcher::join(const BlobLocator& blob) {
  if (auto running = find(blob.digest)) return running;
  auto fetch = std::make_shared<BlobFetch>();
  inflight_.emplace(blob.digest.str(), fetch);
  ++counters_.upstream_blob_fetches;
  asio::co_spawn(executor_, run(fetch, blob), asio::detached);
  return fetch;
}

Task<void> BlobFetcher::run(std::shared_ptr<BlobFetch> fetch, BlobLocator blob) {
  const Digest digest = blob.digest;
  Status status;
  std::unique_ptr<BlobStream> stream;  // the last source's, kept until the blob is cached
  try {
    status = co_await download(*fetch, std::move(blob), stream);
  } catch (const std::exception& e) {
    status = Error(Errc::kInternal, e.what());
  }
  if (!status) {
    finish(*fetch, digest, status.error());
    co_return;
  }
  // Verified: readers may now send their last bytes while the file is made durable.
  fetch->state_ = BlobFetch::State::kVerified;
  fetch->progress_.notify_all();
  const std::uint64_t size = fetch->written_;
  // Raw pointers: this coroutine keeps the fetch alive until the commit is back, so the fetch
  // is never destroyed on a pool thread.
  Store* store = &store_;
  BlobFetch* done = fetch.get();
  auto commit = [store, done, digest, size] {
    return store->commit_blob(done->temp_, digest, size);
  };
  const Status committed = co_await offload(pool_, std::move(commit));
  if (!committed) {
    LOG_ERROR("blob {}: verified but not cached: {}", digest.str(), committed.error().what());
  } else if (stream) {
    stream->cached();
  }
  finish(*fetch, digest, std::nullopt);
}

Task<Status> BlobFetcher::download(BlobFetch& fetch, BlobLocator blob,
                                   std::unique_ptr<BlobStream>& stream) {
  auto temp = store_.create_temp(blob.digest);
  if (!temp) co_return temp.error();
  fetch.temp_ = std::move(*temp);
  auto opened =
      co_await sources_.open_from(0, blob, 0, deadline_after(options_.open_timeout), fetch.fd());
  if (!opened) co_return opened.error();
  std::size_t index = opened->index;
  counters_.source_fallbacks += opened->fallbacks;
  stream = std::move(opened->stream);
  // The stream dies before the fetch (run() holds both; the stream goes first).
  BlobFetch* observed = &fetch;
  auto on_activity = [observed] {
    observed->activity_ = std::chrono::steady_clock::now();
    observed->progress_.notify_all();
  };
  stream->on_activity(on_activity);
  fetch.size_ = stream->size();
  fetch.source_ = std::string(stream->source());
  fetch.state_ = BlobFetch::State::kStreaming;
  fetch.progress_.notify_all();

  // Hashing and writing a read's bytes run on the thread pool while the next read is under way
  // (docs/architecture.md "Threads and time"): the io thread only moves bytes between sockets.
  // One job at a time, so the hasher is never used by two threads; its state lives in `pipe`,
  // which the job holds, so nothing it touches dies before it.
  auto pipe = std::make_shared<Pipeline>(blob.digest.algorithm(), options_.buffer_size);
  const auto executor = executor_;
  int cur = 0;
  int switches = 0;
  std::optional<Error> failure;
  for (long reads = 0; reads < kMaxReads; ++reads) {
    auto n = co_await stream->read_some(pipe->buffers[cur].data(), pipe->buffers[cur].size());
    co_await pipe->wait_idle();  // the previous read's bytes are hashed and in the file
    if (!pipe->status) {
      failure = pipe->status.error();
      break;
    }
    if (!n) {
      // The source broke mid-transfer: the next one continues from the byte reached.
      if (index + 1 >= sources_.size() || switches >= 3 || !is_handover_error(n.error())) {
        failure = n.error();
        break;
      }
      LOG_WARN("blob {}: {} failed at byte {} ({}); resuming from the next source",
               blob.digest.str(), stream->source(), fetch.written_, n.error().what());
      auto next = co_await sources_.open_from(index + 1, blob, fetch.written_,
                                              deadline_after(options_.open_timeout), fetch.fd());
      if (!next) {
        failure = next.error();
        break;
      }
      if (fetch.size_ && next->stream->size() && *next->stream->size() != *fetch.size_) {
        failure = Error(Errc::kBadUpstreamResponse, "sources disagree on the blob's size");
        break;
      }
      index = next->index;
      counters_.source_fallbacks += next->fallbacks;
      stream = std::move(next->stream);
      stream->on_activity(on_activity);
      fetch.source_ = std::string(stream->source());
      ++switches;
      ++counters_.source_switches;
      continue;
    }
    if (*n == 0) break;
    if (fetch.size_ && fetch.written_ + *n > *fetch.size_) {
      failure = Error(Errc::kBadUpstreamResponse, "source sent more bytes than it announced");
      break;
    }
    const std::string_view from = stream->source();
    std::atomic<std::uint64_t>& counter = from == "supernode" ? counters_.bytes_from_supernode
                                          : from == "swarm"   ? counters_.bytes_from_swarm
                                                              : counters_.bytes_from_upstream;
    const std::size_t bytes = *n;
    const char* data = pipe->buffers[cur].data();
    const int fd = stream->in_place() ? -1 : fetch.fd();  // -1: the source wrote them already
    const std::uint64_t offset = fetch.written_;
    pipe->busy = true;
    auto job = [pipe, executor, data, bytes, fd, offset, observed, &counter] {
      pipe->hasher.update(data, bytes);
      Status written = fd >= 0 ? pwrite_all(fd, data, bytes, offset) : Status{};
      asio::post(executor, [pipe, observed, bytes, &counter, written = std::move(written)] {
        if (written) {
          observed->written_ += bytes;
          observed->activity_ = std::chrono::steady_clock::now();
          counter += bytes;
          observed->progress_.notify_all();
        } else {
          pipe->status = written;
        }
        pipe->busy = false;
        pipe->idle.notify_all();
      });
    };
    asio::post(pool_, std::move(job));
    cur ^= 1;
  }
  co_await pipe->wait_idle();
  if (!failure && !pipe->status) failure = pipe->status.error();
  if (failure) co_return *failure;
  if (fetch.size_ && fetch.written_ != *fetch.size_) {
    co_return Error(Errc::kBadUpstreamResponse, "source sent fewer bytes than it announced");
  }
  const Digest got = pipe->hasher.finish();
  if (!(got == blob.digest)) {
    ++counters_.digest_mismatches;
    co_return Error(Errc::kDigestMismatch,
                    "digest mismatch: " + fetch.source_ + " sent bytes hashing to " + got.str());
  }
  fetch.size_ = fetch.written_;
  co_return Status{};
}

void BlobFetcher::finish(BlobFetch& fetch, const Digest& digest, std::optional<Error> error) {
  if (error) {
    fetch.state_ = BlobFetch::State::kFailed;
    fetch.error_ = *error;
    const bool mismatch = error->code == make_error_code(Errc::kDigestMismatch);
    if (mismatch) {
      LOG_ERROR("blob {}: {}; discarded, every reader's connection is aborted", digest.str(),
                error->what());
    } else {
      LOG_WARN("blob {}: fetch failed: {}", digest.str(), error->what());
    }
    fetch.progress_.notify_all();
  }
  auto it = inflight_.find(digest.str());
  if (it != inflight_.end() && it->second.get() == &fetch) inflight_.erase(it);
}

}  // namespace layerswarm::mirror
