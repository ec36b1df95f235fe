#include "common/mirror/blob_fetch.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"

namespace layerswarm::mirror {
namespace {

// Reads of one download: a bound far past any blob (even at 1 KiB per read: ~1 PiB).
constexpr long kMaxReads = 1L << 40;

// 0, or the errno of the failed write.
int pwrite_all(int fd, const char* data, std::size_t size, std::uint64_t offset) {
  for (int i = 0; size > 0 && i < 1'000'000; ++i) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return size == 0 ? 0 : EIO;
}

bool no_space(int err) { return err == ENOSPC || err == EDQUOT; }

// Progress is recorded with a partial file at most this often (bytes).
constexpr std::uint64_t kProgressStep = 256 << 10;
// The smallest batch a download's pipeline is given (below the configured batch size).
constexpr std::size_t kMinBatch = 64 << 10;

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
  // `publish(data, bytes, counter)`: a batch is hashed and in the file (io thread); `data`
  // stays valid until the call returns.
  using Publish = std::function<void(const char*, std::size_t, std::atomic<std::uint64_t>*)>;
  // `full(offset)`: a write found the disk full (once); bytes from `offset` on are not in the
  // file, and later batches are hashed only (io thread).
  using Full = std::function<void(std::uint64_t)>;

  Pipeline(Digest::Algorithm algorithm, std::size_t batch_size, asio::thread_pool& pool,
           asio::any_io_executor io, Publish publish, Full full)
      : hasher_(algorithm),
        buffers_{std::vector<char>(batch_size), std::vector<char>(batch_size)},
        pool_(pool),
        io_(std::move(io)),
        publish_(std::move(publish)),
        full_(std::move(full)) {}

  // The first `length` bytes are already in `fd` (a resumed download): hashes them (on the
  // pool) before any batch. Errors: kStorage.
  Task<Status> preload(int fd, std::uint64_t length) {
    Hasher* h = &hasher_;
    auto job = [fd, length, h]() -> Status {
      std::vector<char> buf(1 << 20);
      for (std::uint64_t off = 0; off < length;) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length - off));
        const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          return Error(Errc::kStorage, std::string("reading a partial download back: ") +
                                           (n < 0 ? std::strerror(errno) : "short file"));
        }
        h->update(buf.data(), static_cast<std::size_t>(n));
        off += static_cast<std::uint64_t>(n);
      }
      return Status{};
    };
    Status s = co_await offload(pool_, std::move(job));
    if (s) offset_ = added_ = length;
    co_return s;
  }

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
  void detach() {
    publish_ = nullptr;
    full_ = nullptr;
  }

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
    batch_data_ = data;
    batch_bytes_ = bytes;
    batch_offset_ = offset;
    batch_counter_ = counter_;
    pending_ = fd_ >= 0 ? 2 : 1;
    auto self = shared_from_this();
    asio::post(pool_, [self, data, bytes] {
      self->hasher_.update(data, bytes);
      asio::post(self->io_, [self] { self->job_done(0); });
    });
    if (fd_ < 0) return;
    asio::post(pool_, [self, data, bytes, offset, fd = fd_] {
      const int err = pwrite_all(fd, data, bytes, offset);
      asio::post(self->io_, [self, err] { self->job_done(err); });
    });
  }

  // `err`: 0, or the errno of the batch's failed write.
  void job_done(int err) {
    if (err != 0 && no_space(err) && status_) {
      // The disk is full: the download goes on uncached (the fetch serves this batch and the
      // rest from memory); no more writes.
      fd_ = -1;
      if (full_) full_(batch_offset_);
    } else if (err != 0 && status_) {
      status_ = Error(Errc::kStorage, std::string("writing a download: ") + std::strerror(err));
    }
    if (--pending_ > 0) return;
    if (status_) {
      if (publish_) publish_(batch_data_, batch_bytes_, batch_counter_);
      if (base_ < fill_) dispatch();  // what the reads added meanwhile
    }
    idle_.notify_all();
  }

  Hasher hasher_;
  std::vector<char> buffers_[2];
  asio::thread_pool& pool_;
  asio::any_io_executor io_;
  Publish publish_;
  Full full_;
  int cur_ = 0;           // the buffer reads go into
  std::size_t base_ = 0;  // buffers_[cur_][base_, fill_): read, not yet on the pool
  std::size_t fill_ = 0;
  std::uint64_t offset_ = 0;  // the file offset of buffers_[cur_][base_]
  std::uint64_t added_ = 0;
  int pending_ = 0;  // jobs of the batch on the pool
  const char* batch_data_ = nullptr;
  std::size_t batch_bytes_ = 0;
  std::uint64_t batch_offset_ = 0;
  std::atomic<std::uint64_t>* batch_counter_ = nullptr;
  int fd_ = -1;
  std::atomic<std::uint64_t>* counter_ = nullptr;
  Status status_;  // the first failed write
  Notifier idle_;
};

}  // namespace

BlobFetch::Reader::Reader(BlobFetch& fetch, const std::uint64_t* pos) : fetch_(fetch), pos_(pos) {
  fetch_.readers_.push_back(pos_);
}

BlobFetch::Reader::~Reader() {
  auto& r = fetch_.readers_;
  r.erase(std::remove(r.begin(), r.end(), pos_), r.end());
  fetch_.consumed_.notify_all();
}

BlobFetcher::BlobFetcher(asio::any_io_executor executor, Store& store, SourceChain& sources,
                         asio::thread_pool& pool, Counters& counters, FetchOptions options,
                         CacheKeeper* keeper)
    : executor_(std::move(executor)),
      store_(store),
      sources_(sources),
      pool_(pool),
      counters_(counters),
      options_(options),
      keeper_(keeper),
      turns_(options.turns) {}

void BlobFetcher::go_uncached(BlobFetch& fetch, const Digest& digest, std::uint64_t offset,
                              const char* why) {
  if (fetch.uncached_) return;
  fetch.uncached_ = true;
  fetch.file_limit_ = offset;
  fetch.window_base_ = offset;
  fetch.window_.clear();
  fetch.room_.reset();
  LOG_WARN("blob {}: {}: streaming it through uncached from byte {} (verified as ever)",
           digest.str(), why, offset);
  // Later requests start their own download: this one's early bytes are gone once read.
  auto it = inflight_.find(digest.str());
  if (it != inflight_.end() && it->second.get() == &fetch) inflight_.erase(it);
}

Task<void> BlobFetcher::wait_for_readers(BlobFetch& fetch) {
  // Where the slowest reader is; the bytes before it are no longer needed.
  auto consumed_to = [&] {
    std::uint64_t keep_from = fetch.window_end();
    for (const std::uint64_t* p : fetch.readers_) keep_from = std::min(keep_from, *p);
    return std::max(keep_from, fetch.window_base_);
  };
  // Drops the consumed bytes once they are half a window (or all of it): moving the rest
  // forward after every read would copy the window over and over.
  auto trim = [&] {
    const std::uint64_t keep_from = consumed_to();
    const auto drop = static_cast<std::size_t>(keep_from - fetch.window_base_);
    if (drop < fetch.window_.size() && drop < options_.window_size / 2) return;
    fetch.window_.erase(0, drop);
    fetch.window_base_ = keep_from;
  };
  auto full = [&] { return fetch.window_end() - consumed_to() >= options_.window_size; };
  trim();
  const SteadyTime deadline = deadline_after(options_.reader_wait);
  for (int i = 0; i < 1'000'000 && full(); ++i) {
    const bool woken = co_await fetch.consumed_.wait_until(deadline);
    if (!woken) break;
    trim();
  }
  if (full()) {
    // The slowest reader stopped reading: it is left behind (its response aborts).
    fetch.window_base_ += fetch.window_.size();
    fetch.window_.clear();
  }
}

Task<Result<std::uint64_t>> BlobFetcher::open_file(BlobFetch& fetch, const Digest& digest) {
  if (partials_in_use_.count(digest.str()) > 0) {
    auto temp = store_.create_temp(digest);
    if (!temp) co_return temp.error();
    fetch.temp_ = std::move(*temp);
    co_return std::uint64_t{0};
  }
  auto partial = store_.open_partial(digest);
  if (!partial) co_return partial.error();
  partials_in_use_.insert(digest.str());
  fetch.partial_ = true;
  fetch.temp_ = std::move(partial->file);
  fetch.recorded_ = partial->length;
  co_return partial->length;
}

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
  auto release_partial = [&] {
    if (fetch->partial_) partials_in_use_.erase(digest.str());
    fetch->partial_ = false;
  };
  if (!status) {
    // Bytes known to be wrong are dropped; a download that broke keeps its partial file.
    const auto code = status.error().code;
    if (code == make_error_code(Errc::kDigestMismatch) ||
        code == make_error_code(Errc::kBadUpstreamResponse) || !fetch->partial_) {
      Store::discard(fetch->temp_);
    } else {
      Store::record_progress(fetch->temp_, std::min(fetch->written_, fetch->file_limit_),
                             fetch->size_);
    }
    release_partial();
    finish(*fetch, digest, status.error());
    co_return;
  }
  // Verified: readers may now send their last bytes while the file is made durable.
  fetch->state_ = BlobFetch::State::kVerified;
  fetch->progress_.notify_all();
  const std::uint64_t size = fetch->written_;
  if (fetch->uncached_) {
    ++counters_.uncached_blobs;
    LOG_WARN("blob {}: verified and served, not cached (no room)", digest.str());
    // Readers still sending keep the fetch (and its window) alive; the file is not needed.
    Store::discard(fetch->temp_);
    release_partial();
    finish(*fetch, digest, std::nullopt);
    co_return;
  }
  // Raw pointers: this coroutine keeps the fetch alive until the commit is back, so the fetch
  // is never destroyed on a pool thread.
  Store* store = &store_;
  BlobFetch* done = fetch.get();
  auto commit = [store, done, digest, size, extra = fetch->commit_extra_] {
    return store->commit_blob(done->temp_, digest, size, extra);
  };
  const Status committed = co_await offload(pool_, std::move(commit));
  release_partial();
  fetch->room_.reset();  // counted in the store's use now
  if (!committed) {
    LOG_ERROR("blob {}: verified but not cached: {}", digest.str(), committed.error().what());
    Store::discard(fetch->temp_);
  } else {
    // The upstream gave it for this repository (docs/security.md "Per-repository access").
    store_.note_shown(digest, fetch->registry_, fetch->repository_);
    fetch->cached_ = true;
    if (stream) stream->cached();
  }
  finish(*fetch, digest, std::nullopt);
}

Task<Status> BlobFetcher::download(BlobFetch& fetch, BlobLocator blob,
                                   std::unique_ptr<BlobStream>& stream) {
  auto resumed = co_await open_file(fetch, blob.digest);
  if (!resumed) co_return resumed.error();
  std::uint64_t offset = *resumed;
  auto opened = co_await sources_.open_from(0, blob, offset, deadline_after(options_.open_timeout),
                                            fetch.fd());
  if (!opened && offset > 0) {
    // The source would not give the rest (no ranges, another size): start over.
    LOG_INFO("blob {}: cannot resume at byte {} ({}); starting over", blob.digest.str(), offset,
             opened.error().what());
    offset = 0;
    if (::ftruncate(fetch.fd(), 0) != 0) co_return Error(Errc::kStorage, "truncating a download");
    opened =
        co_await sources_.open_from(0, blob, 0, deadline_after(options_.open_timeout), fetch.fd());
  }
  if (!opened) co_return opened.error();
  std::size_t index = opened->index;
  counters_.source_fallbacks += opened->fallbacks;
  stream = std::move(opened->stream);
  fetch.size_ = stream->size();
  if (fetch.size_ && offset > *fetch.size_)
    co_return Error(Errc::kBadUpstreamResponse, "the partial download is too long");

  // Room under the budget and on the disk, before a byte is written.
  if (keeper_ && fetch.size_) {
    auto room = co_await keeper_->make_room(*fetch.size_);
    if (room) {
      fetch.room_ = std::move(*room);
    } else {
      go_uncached(fetch, blob.digest, offset, "no room in the cache");
    }
  }
  if (fetch.uncached_ && stream->in_place()) {
    // The swarm writes pieces into the file: the next source streams instead.
    auto next = co_await sources_.open_from(index + 1, blob, offset,
                                            deadline_after(options_.open_timeout), fetch.fd());
    if (!next) co_return next.error();
    index = next->index;
    stream = std::move(next->stream);
  }

  // The stream dies before the fetch (run() holds both; the stream goes first).
  BlobFetch* observed = &fetch;
  auto on_activity = [observed] {
    observed->activity_ = std::chrono::steady_clock::now();
    observed->progress_.notify_all();
  };
  stream->on_activity(on_activity);
  fetch.source_ = std::string(stream->source());
  fetch.state_ = BlobFetch::State::kStreaming;
  fetch.progress_.notify_all();

  // Hashing and writing run on the thread pool while the next reads are under way (Pipeline);
  // the io thread only moves bytes between sockets.
  auto publish = [observed](const char* data, std::size_t bytes,
                            std::atomic<std::uint64_t>* counter) {
    if (observed->uncached_ && observed->written_ + bytes > observed->file_limit_) {
      // Past the file: into the window (what readers have not read yet stays there).
      const std::uint64_t from = std::max(observed->written_, observed->file_limit_);
      const std::size_t skip = static_cast<std::size_t>(from - observed->written_);
      if (observed->window_end() == from) observed->window_.append(data + skip, bytes - skip);
    }
    observed->written_ += bytes;
    observed->activity_ = std::chrono::steady_clock::now();
    *counter += bytes;
    const std::uint64_t in_file = std::min(observed->written_, observed->file_limit_);
    if (observed->partial_ && in_file >= observed->recorded_ + kProgressStep) {
      observed->recorded_ = in_file;
      Store::record_progress(observed->temp_, in_file, observed->size_);
    }
    observed->progress_.notify_all();
  };
  const Digest digest = blob.digest;
  auto full = [this, observed, digest](std::uint64_t at) {
    go_uncached(*observed, digest, at, "the disk is full");
    if (keeper_) asio::co_spawn(executor_, keeper_->on_no_space(), asio::detached);
  };
  // Each download holds two batches. A swarm download arrives at the link's speed and is
  // written in place, so a quarter of a batch hands off often enough; and a blob smaller than a
  // batch needs no more than itself: six downloads at once held 12 MiB of batches for chunk
  // torrents' worth of bytes (docs/benchmarks.md "The torrent cap counts downloads").
  std::size_t batch = options_.batch_size;
  if (stream->in_place()) batch = std::max<std::size_t>(batch / 4, kMinBatch);
  if (fetch.size_ && *fetch.size_ > offset && *fetch.size_ - offset < batch) {
    batch = std::max<std::size_t>(static_cast<std::size_t>(*fetch.size_ - offset), kMinBatch);
  }
  batch = std::min(batch, options_.batch_size);
  auto pipe = std::make_shared<Pipeline>(blob.digest.algorithm(), batch, pool_, executor_,
                                         std::move(publish), std::move(full));
  // Whatever way this coroutine ends, late jobs no longer touch the fetch.
  struct Detach {
    Pipeline* pipe;
    ~Detach() { pipe->detach(); }
  } detach{pipe.get()};
  if (offset > 0) {
    Status loaded = co_await pipe->preload(fetch.fd(), offset);
    if (!loaded) co_return loaded.error();
    fetch.written_ = offset;
    counters_.resumed_bytes += offset;
    LOG_INFO("blob {}: resuming a partial download at byte {} from {}", blob.digest.str(), offset,
             stream->source());
  }
  auto target = [&] {
    const std::string_view from = stream->source();
    std::atomic<std::uint64_t>* counter = from == "supernode" ? &counters_.bytes_from_supernode
                                          : from == "swarm"   ? &counters_.bytes_from_swarm
                                                              : &counters_.bytes_from_upstream;
    pipe->set_target(stream->in_place() || fetch.uncached_ ? -1 : fetch.fd(), counter);
  };
  target();
  int switches = 0;
  std::optional<Error> failure;
  std::optional<UpstreamTurns::Turn> turn;  // while reading over HTTP (upstream_turns.h)
  for (long reads = 0; reads < kMaxReads; ++reads) {
    if (fetch.uncached_) co_await wait_for_readers(fetch);
    co_await pipe->make_room();
    if (!pipe->status()) break;
    std::size_t want = pipe->room();
    // Agents behind a supernode share (no turn, no extra step per read).
    if (options_.turns.in_order && !stream->in_place()) {
      if (!turn) turn.emplace(turns_, blob.registry);
      const std::uint64_t left =
          fetch.size_ ? *fetch.size_ - std::min(*fetch.size_, fetch.written_) : ~std::uint64_t{0};
      want = co_await turns_.allowance(*turn, left, want);
    }
    auto n = co_await stream->read_some(pipe->space(), want);
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
    Metrics::get().source_fallback(stream->source(), next->stream->source());
    index = next->index;
    counters_.source_fallbacks += next->fallbacks;
    stream = std::move(next->stream);
    stream->on_activity(on_activity);
    fetch.source_ = std::string(stream->source());
    target();
    ++switches;
    ++counters_.source_switches;
  }
  turn.reset();  // the next download may lead at once
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
  fetch.done_ = true;
  fetch.progress_.notify_all();
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
