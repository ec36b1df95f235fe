// The verified content store (STYLE.md 3, LIBS.md "RocksDB"): blob bytes as files in a
// content-addressed tree (<dir>/blobs/<alg>/<xx>/<hex>), and a RocksDB index (<dir>/index)
// holding each object's size, media type, creation and last access, an access-ordered key for
// the TTL sweep (and later LRU), manifests (small objects) and tag mappings.
//
// Only verified content enters: a download is written to a temporary file under <dir>/tmp,
// and commit_blob() renames it in after the caller checked its digest.
//
// Threading: every method is thread-safe. commit_blob() and sweep() block (fsync, unlink):
// call them through a thread pool. The rest are quick (RocksDB memtable and block cache).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/digest.h"
#include "common/result.h"

namespace layerswarm {

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct OpenBlob {
  UniqueFd fd;
  std::uint64_t size = 0;
  std::int64_t accessed_ms = 0;  // the last recorded access (for touch())
};

// A download in progress. Unlinked on destruction unless committed.
struct TempFile {
  UniqueFd fd;
  std::string path;
  ~TempFile();
  TempFile() = default;
  TempFile(TempFile&&) = default;
  TempFile& operator=(TempFile&&) = default;
};

struct StoredManifest {
  std::string media_type;
  std::string bytes;
  std::int64_t accessed_ms = 0;  // the last recorded access (for touch())
};

struct TagRecord {
  Digest digest;
  std::string media_type;
  std::uint64_t size = 0;
  TimePoint validated;  // when the upstream last confirmed (or gave) this digest
};

struct SweepStats {
  std::uint64_t blobs = 0;
  std::uint64_t manifests = 0;
  std::uint64_t tags = 0;
  std::uint64_t bytes = 0;
};

struct StoreOptions {
  std::string dir;
  // Last-access times are written at most this often per object (reads stay cheap).
  std::chrono::milliseconds access_granularity{std::chrono::minutes(10)};
  std::size_t block_cache_bytes = 4 << 20;
  std::size_t write_buffer_bytes = 4 << 20;
};

class Store {
 public:
  // Creates the directories, opens (or creates) the index, and removes leftovers in tmp/.
  // Errors: kStorage naming the path and the cause.
  static Result<std::unique_ptr<Store>> open(StoreOptions options, const Clock& clock);
  ~Store();

  // A cached, verified blob opened for reading. Errors: kBlobUnknown (absent, or its file
  // vanished or has the wrong size: the entry is dropped), kStorage.
  Result<OpenBlob> open_blob(const Digest& digest);
  // Size of a cached blob without opening it. nullopt when absent.
  std::optional<std::uint64_t> blob_size(const Digest& digest);
  // A small record kept with a cached blob and removed with it (the agent keeps the blob's
  // chunk metainfo there, to seed it again after a restart). Errors: kBlobUnknown, kStorage.
  Status put_extra(const Digest& digest, std::string_view record);
  // One blob's extra record; nullopt when it has none.
  std::optional<std::string> get_extra(const Digest& digest);
  // Every blob's extra record.
  std::vector<std::pair<Digest, std::string>> extras();
  // A new temporary file for a download of `digest`. Errors: kStorage.
  Result<TempFile> create_temp(const Digest& digest);
  // Makes a verified download durable and visible: fsync, rename into the tree, index it.
  // The caller has checked that the bytes hash to `digest`. Blocking. Errors: kStorage.
  Status commit_blob(TempFile& temp, const Digest& digest, std::uint64_t size);

  // Errors: kManifestUnknown, kStorage.
  Result<StoredManifest> get_manifest(const Digest& digest);
  // The caller has checked that `bytes` hash to `digest`. Errors: kStorage.
  Status put_manifest(const Digest& digest, std::string_view media_type, std::string_view bytes);

  std::optional<TagRecord> get_tag(std::string_view registry, std::string_view repository,
                                   std::string_view tag);
  Status put_tag(std::string_view registry, std::string_view repository, std::string_view tag,
                 const TagRecord& record);
  Status delete_tag(std::string_view registry, std::string_view repository, std::string_view tag);

  // Per-repository access (docs/security.md): when the upstream last gave or confirmed
  // `digest` in (registry, repository); nullopt when it never did (as far as this cache knows).
  std::optional<TimePoint> shown_in(const Digest& digest, std::string_view registry,
                                    std::string_view repository);
  // Records that the upstream gave or confirmed `digest` there, now. Never fails (logged).
  void note_shown(const Digest& digest, std::string_view registry, std::string_view repository);
  // The upstream says `digest` is not (or no longer) there.
  void forget_shown(const Digest& digest, std::string_view registry, std::string_view repository);

  // Records an access (rate-limited by access_granularity). `accessed_ms`: the access time the
  // caller read with the object (OpenBlob, StoredManifest), which saves a lookup when recent.
  void touch(const Digest& digest);
  void touch(const Digest& digest, std::int64_t accessed_ms);

  // Removes blobs and manifests last accessed before `objects_before` (file first, then the
  // index entry) and tag mappings validated before `tags_before`; at most `max_items`
  // objects per call. Blocking. Errors: kStorage (what was removed before it stays removed).
  Result<SweepStats> sweep(TimePoint objects_before, TimePoint tags_before, std::size_t max_items);

  const std::string& dir() const;
  std::string blob_path(const Digest& digest) const;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace layerswarm
