// In-flight blob downloads, one per digest however many clients ask (single flight).
//
// A fetch pulls the blob from the first source of a SourceChain that can serve it into a
// temporary file, hashing as it goes; when that source breaks mid-transfer, the next one
// continues from the byte reached (the hash runs on, over one seamless byte sequence). Readers
// (client responses, any byte range) follow the file as it grows. A reader may send bytes
// before the digest is checked but never the last byte of its response: that waits for
// kVerified. On a digest mismatch the fetch turns kFailed, every reader aborts its connection,
// the temporary file is deleted, and nothing enters the cache. A verified blob is committed to
// the Store (fsync and rename on the thread pool) and leaves the in-flight table.
//
// The cache's lifecycle (docs/architecture.md): a download starts from the partial file an
// earlier one left (a crash, a kill, a lost connection), asking its source for the rest with a
// Range; it reserves room under the disk budget first (CacheKeeper), and when there is none,
// or a write finds the disk full, it streams through uncached: the bytes past the file live in
// a bounded window in memory that readers follow, hashed as ever, and nothing is stored.
//
// Threading: the io_context thread (the one thread running the agent).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/async.h"
#include "common/mirror/cache_keeper.h"
#include "common/mirror/counters.h"
#include "common/mirror/source_chain.h"
#include "common/mirror/upstream_turns.h"
#include "common/store.h"

namespace layerswarm::mirror {

class BlobFetch {
 public:
  enum class State { kOpening, kStreaming, kVerified, kFailed };

  State state() const { return state_; }
  // Known once the source announced it (kStreaming) or at kVerified.
  std::optional<std::uint64_t> size() const { return size_; }
  // Bytes written to the file so far (readable at fd()).
  std::uint64_t available() const { return written_; }
  const Error& error() const { return error_; }
  // The temporary file, valid while this object lives.
  int fd() const { return temp_.fd.get(); }
  const std::string& source() const { return source_; }
  // The registry and repository the fetch was started for (the upstream shows the blob there).
  const std::string& registry() const { return registry_; }
  const std::string& repository() const { return repository_; }
  // The last time the source made progress: bytes written, or out-of-order progress it
  // reported (BlobStream::on_activity).
  SteadyTime last_activity() const { return activity_; }
  // Woken on every state change and every chunk written.
  Notifier& progress() { return progress_; }

  // Streaming through uncached: bytes [0, file_limit()) are in the file, later ones only in
  // the window, [window_begin(), window_end()).
  bool uncached() const { return uncached_; }
  std::uint64_t file_limit() const { return file_limit_; }
  std::uint64_t window_begin() const { return window_base_; }
  std::uint64_t window_end() const { return window_base_ + window_.size(); }
  // Window bytes [from, to) (within the window).
  std::string_view window(std::uint64_t from, std::uint64_t to) const {
    return std::string_view(window_).substr(static_cast<std::size_t>(from - window_base_),
                                            static_cast<std::size_t>(to - from));
  }
  // A reader of an uncached fetch registers where it is, so the window keeps its bytes (for
  // as long as the reader keeps up), and reports each step with consumed().
  class Reader {
   public:
    Reader(BlobFetch& fetch, const std::uint64_t* pos);
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

   private:
    BlobFetch& fetch_;
    const std::uint64_t* pos_;
  };
  void consumed() { consumed_.notify_all(); }
  // The fetch is over (failed, uncached, or committed); cached(): the blob is in the store.
  bool done() const { return done_; }
  bool cached() const { return cached_; }
  // The blob's extra record in the store (Store::put_extra), committed with the blob when it
  // is set before the digest check ends; a later call is ignored.
  void set_commit_extra(std::string record) { commit_extra_ = std::move(record); }

 private:
  friend class BlobFetcher;
  State state_ = State::kOpening;
  std::optional<std::uint64_t> size_;
  std::uint64_t written_ = 0;
  Error error_;
  TempFile temp_;
  std::string source_ = "upstream";
  std::string registry_;
  std::string repository_;
  SteadyTime activity_ = std::chrono::steady_clock::now();
  Notifier progress_;
  bool uncached_ = false;
  std::string commit_extra_;
  std::uint64_t file_limit_ = ~std::uint64_t{0};
  std::string window_;
  std::uint64_t window_base_ = 0;
  std::vector<const std::uint64_t*> readers_;
  Notifier consumed_;
  std::optional<CacheKeeper::Reservation> room_;
  std::uint64_t recorded_ = 0;  // progress last recorded with the partial file
  bool partial_ = false;        // temp_ is this digest's partial file (resumable)
  bool done_ = false;
  bool cached_ = false;
};

struct FetchOptions {
  std::chrono::milliseconds open_timeout{20'000};  // until the source answers
  // The most bytes handed to the hash and the file at once (blob_fetch.cpp, Pipeline). A batch
  // leaves as soon as the pool is free, so readers trail a slow download by one read and a
  // fast one by at most a batch. Measured (cold 1 GiB through one agent, loopback): one
  // hand-off per 64 KiB read 2.5-3.2 s; see docs/benchmarks.md for the figures at this size.
  // A swarm download uses a quarter of it, and no download more than its blob (blob_fetch.cpp).
  std::size_t batch_size = 1024 * 1024;
  // Uncached streaming: the window's size, and how long the download waits for its slowest
  // reader before leaving it behind (that reader's response is aborted).
  std::size_t window_size = 8 << 20;
  std::chrono::milliseconds reader_wait{35'000};
  // Downloads over HTTP from one registry take turns (upstream_turns.h); off: they share.
  TurnOptions turns;
};

class BlobFetcher {
 public:
  // `keeper`: the disk budget (null: no budget, no uncached streaming before a write fails).
  BlobFetcher(asio::any_io_executor executor, Store& store, SourceChain& sources,
              asio::thread_pool& pool, Counters& counters, FetchOptions options,
              CacheKeeper* keeper = nullptr);

  // The running fetch of `blob.digest`, or a new one. Never null.
  std::shared_ptr<BlobFetch> join(const BlobLocator& blob);
  // The running fetch of `digest`, or null.
  std::shared_ptr<BlobFetch> find(const Digest& digest) const;
  std::size_t in_flight() const { return inflight_.size(); }

 private:
  Task<void> run(std::shared_ptr<BlobFetch> fetch, BlobLocator blob);
  // `stream`: the source stream in use, left set for the caller to tell it the blob is cached.
  Task<Status> download(BlobFetch& fetch, BlobLocator blob, std::unique_ptr<BlobStream>& stream);
  void finish(BlobFetch& fetch, const Digest& digest, std::optional<Error> error);
  // From here on the fetch streams through uncached; bytes from `offset` on are not in the file.
  void go_uncached(BlobFetch& fetch, const Digest& digest, std::uint64_t offset, const char* why);
  // Waits while the window is full and a reader is still behind (uncached fetches).
  Task<void> wait_for_readers(BlobFetch& fetch);
  // The temporary file: the digest's partial file (resumed from), unless another fetch of the
  // digest (an uncached one that left the table) is using it.
  Task<Result<std::uint64_t>> open_file(BlobFetch& fetch, const Digest& digest);

  asio::any_io_executor executor_;
  Store& store_;
  SourceChain& sources_;
  asio::thread_pool& pool_;
  Counters& counters_;
  FetchOptions options_;
  CacheKeeper* keeper_;
  UpstreamTurns turns_;
  std::map<std::string, std::shared_ptr<BlobFetch>> inflight_;
  std::set<std::string> partials_in_use_;
};

}  // namespace layerswarm::mirror
