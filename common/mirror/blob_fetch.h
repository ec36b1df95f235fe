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
// Threading: the io_context thread (the one thread running the agent).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/async.h"
#include "common/mirror/counters.h"
#include "common/mirror/source_chain.h"
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
};

struct FetchOptions {
  std::chrono::milliseconds open_timeout{20'000};  // until the source answers
  // The most bytes handed to the hash and the file at once (blob_fetch.cpp, Pipeline). A batch
  // leaves as soon as the pool is free, so readers trail a slow download by one read and a
  // fast one by at most a batch. Measured (cold 1 GiB through one agent, loopback): one
  // hand-off per 64 KiB read 2.5-3.2 s; see docs/benchmarks.md for the figures at this size.
  std::size_t batch_size = 1024 * 1024;
};

class BlobFetcher {
 public:
  BlobFetcher(asio::any_io_executor executor, Store& store, SourceChain& sources,
              asio::thread_pool& pool, Counters& counters, FetchOptions options);

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

  asio::any_io_executor executor_;
  Store& store_;
  SourceChain& sources_;
  asio::thread_pool& pool_;
  Counters& counters_;
  FetchOptions options_;
  std::map<std::string, std::shared_ptr<BlobFetch>> inflight_;
};

}  // namespace layerswarm::mirror
