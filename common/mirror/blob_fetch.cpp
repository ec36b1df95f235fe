#include "common/mirror/blob_fetch.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "common/log.h"

namespace layerswarm::mirror {
namespace {

// Reads of one download: a bound far past any blob (even at 1 KiB per read: ~1 PiB).
constexpr long kMaxReads = 1L << 40;

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

// Moves a download's bytes from its reads (io thread) to the hash and the file (thread pool;
// docs/architecture.md "Threads and time"). Reads fill a buffer; what they added leaves for
// the pool as one batch as soon as the pool is done with the previous one, so on a link slower
// than the hash every read leaves at once, and on a fast link batches grow up to the buffer
// (a few thread hand-offs per MiB instead of one per read). A batch is hashed and written by
// two jobs in parallel; batches are strictly one after the other, so the hasher sees the
// bytes in order and is never used by two threads. Two buffers: reads go on into the other one
// while a full buffer's last batch is on the pool.
//
// Every member is used on the io thread only, except what a batch's jobs read (the hasher,
// the batch's bytes, which nothing else touches until the batch is back). The jobs hold the
// pipeline, so nothing they touch dies before them.
class Pipeline : public std::enable_shared_from_this<Pipeline> {
 public:
  // `publish(bytes, counter)`: a batch is hashed and in the file (io thread).
  using Publish = std::function<void(std::size_t, std::atomic<std::uint64_t>*)>;

  Pipeline(Digest::Algorithm algorithm, std::size_t batch_size, asio::thread_pool& pool,
           asio::any_io_executor io, Publish publish)
      : hasher_(algorithm),
        buffers_{std::vector<char>(batch_size), std::vector<char>(batch_size)},
        pool_(pool),
        io_(std::move(io)),
        publish_(std::move(publish)) {}

  // Where the next read's bytes go and how many fit (make_room() first).
  char* space() { return buffers_[cur_].data() + fill_; }
  std::size_t room() const { return buffers_[cur_].size() - fill_; }
  // Waits, when the buffer is full, until it can switch to the other one.
  Task<void> make_room() {
    if (room() > 0) co_return;
    co_await drain_current();
    cur_ ^= 1;
    base_ = fill_ = 0;
  }
  // `n` bytes were read into space(); `counter` counts them once they are published.
  void add(std::size_t n) {
    fill_ += n;
    added_ += n;
    if (pending_ == 0 && status_) dispatch();
  }
  // Everything added is hashed and in the file, or status() failed.
  Task<void> drain() {
    co_await drain_current();
    co_await wait_idle();
  }
  // Where the next batches go: the download's file, or -1 when the source writes in place;
  // and the counter of their source. Only after drain().
  void set_target(int fd, std::atomic<std::uint64_t>* counter) {
    fd_ = fd;
    counter_ = counter;
  }
  const Status& status() const { return status_; }
  std::uint64_t added() const { return added_; }
  Digest finish() { return hasher_.finish(); }
  // Stops publishing (the download is gone; jobs still on the pool finish unobserved).
  void detach() { publish_ = nullptr; }

 private:
  Task<void> wait_idle() {
    for (int i = 0; i < 1'000'000 && pending_ > 0; ++i) {
      co_await idle_.wait_until(deadline_after(std::chrono::seconds(60)));
    }
  }
  // Every byte of the current buffer has left for the pool (the last batch may still be there).
  Task<void> drain_current() {
    for (int i = 0; i < 4 && base_ < fill_ && status_; ++i) {
      co_await wait_idle();
      if (pending_ == 0 && base_ < fill_ && status_) dispatch();
    }
  }

  void dispatch() {
    const char* data = buffers_[cur_].data() + base_;
    const std::size_t bytes = fill_ - base_;
    const std::uint64_t offset = offset_;
    base_ = fill_;
    offset_ += bytes;
    batch_bytes_ = bytes;
    batch_counter_ = counter_;
    pending_ = fd_ >= 0 ? 2 : 1;
    auto self = shared_from_this();
    asio::post(pool_, [self, data, bytes] {
      self->hasher_.update(data, bytes);
      asio::post(self->io_, [self] { self->job_done(Status{}); });
    });
    if (fd_ < 0) return;
    asio::post(pool_, [self, data, bytes, offset, fd = fd_] {
      Status written = pwrite_all(fd, data, bytes, offset);
      asio::post(self->io_, [self, written = std::move(written)]() mutable {
        self->job_done(std::move(written));
      });
    });
  }

  void job_done(Status result) {
    if (!result && status_) status_ = std::move(result);
    if (--pending_ > 0) return;
    if (status_) {
      if (publish_) publish_(batch_bytes_, batch_counter_);
      if (base_ < fill_) dispatch();  // what the reads added meanwhile
    }
    idle_.notify_all();
  }

  Hasher hasher_;
  std::vector<char> buffers_[2];
  asio::thread_pool& pool_;
  asio::any_io_executor io_;
  Publish publish_;
  int cur_ = 0;           // the buffer reads go into
  std::size_t base_ = 0;  // buffers_[cur_][base_, fill_): read, not yet on the pool
  std::size_t fill_ = 0;
  std::uint64_t offset_ = 0;  // the file offset of buffers_[cur_][base_]
  std::uint64_t added_ = 0;
  int pending_ = 0;  // jobs of the batch on the pool
  std::size_t batch_bytes_ = 0;
  std::atomic<std::uint64_t>* batch_counter_ = nullptr;
  int fd_ = -1;
  std::atomic<std::uint64_t>* counter_ = nullptr;
  Status status_;  // the first failed write
  Notifier idle_;
};

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
  fetch->registry_ = blob.registry;
  fetch->repository_ = blob.repository;
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
  } else {
    // The upstream gave it for this repository (docs/security.md "Per-repository access").
    store_.note_shown(digest, fetch->registry_, fetch->repository_);
    if (stream) stream->cached();
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

  // Hashing and writing run on the thread pool while the next reads are under way (Pipeline);
  // the io thread only moves bytes between sockets.
  auto publish = [observed](std::size_t bytes, std::atomic<std::uint64_t>* counter) {
    observed->written_ += bytes;
    observed->activity_ = std::chrono::steady_clock::now();
    *counter += bytes;
    observed->progress_.notify_all();
  };
  auto pipe = std::make_shared<Pipeline>(blob.digest.algorithm(), options_.batch_size, pool_,
                                         executor_, std::move(publish));
  // Whatever way this coroutine ends, late jobs no longer touch the fetch.
  struct Detach {
    Pipeline* pipe;
    ~Detach() { pipe->detach(); }
  } detach{pipe.get()};
  auto target = [&] {
    const std::string_view from = stream->source();
    std::atomic<std::uint64_t>* counter = from == "supernode" ? &counters_.bytes_from_supernode
                                          : from == "swarm"   ? &counters_.bytes_from_swarm
                                                              : &counters_.bytes_from_upstream;
    pipe->set_target(stream->in_place() ? -1 : fetch.fd(), counter);
  };
  target();
  int switches = 0;
  std::optional<Error> failure;
  for (long reads = 0; reads < kMaxReads; ++reads) {
    co_await pipe->make_room();
    if (!pipe->status()) break;
    auto n = co_await stream->read_some(pipe->space(), pipe->room());
    if (n && *n > 0) {
      if (fetch.size_ && pipe->added() + *n > *fetch.size_) {
        failure = Error(Errc::kBadUpstreamResponse, "source sent more bytes than it announced");
        break;
      }
      pipe->add(*n);
      continue;
    }
    // The end, or a break: what was read goes to the file first.
    co_await pipe->drain();
    if (!pipe->status() || n) break;
    // The source broke mid-transfer: the next one continues from the byte reached.
    if (index + 1 >= sources_.size() || switches >= 3 || !is_handover_error(n.error())) {
      failure = n.error();
      break;
    }
    LOG_WARN("blob {}: {} failed at byte {} ({}); resuming from the next source", blob.digest.str(),
             stream->source(), fetch.written_, n.error().what());
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
    target();
    ++switches;
    ++counters_.source_switches;
  }
  co_await pipe->drain();
  if (!failure && !pipe->status()) failure = pipe->status().error();
  if (failure) co_return *failure;
  if (fetch.size_ && fetch.written_ != *fetch.size_) {
    co_return Error(Errc::kBadUpstreamResponse, "source sent fewer bytes than it announced");
  }
  const Digest got = pipe->finish();
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
