// The verified content store (docs/architecture.md "The cache's lifecycle"): blob bytes as
// files in a content-addressed tree (<dir>/blobs/<alg>/<xx>/<hex>), and a RocksDB index
// (<dir>/index) holding each object's size, media type, creation and last access, the file's
// identity at commit (inode, mtime, ctime: a file changed since is caught when opened), an
// access-ordered key for the TTL sweep and the LRU eviction, manifests (small objects) and tag
// mappings.
//
// Only verified content enters: a download is written to a partial file under <dir>/tmp,
// and commit_blob() renames it in after the caller checked its digest. A partial file survives
// a crash with its length (tmp/<hex>.partial and .partial.len), so a download resumes.
//
// A disk without room for the index at start (or an index that cannot be written) leaves the
// store read-only: cached content is served, nothing new is stored, and reopen_writable()
// (called periodically) makes it writable again once space returns.
//
// Threading: every method is thread-safe. commit_blob() and sweep() block (fsync, unlink):
// call them through a thread pool. The rest are quick (RocksDB memtable and block cache).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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

// A download in progress. Unlinked on destruction unless committed or `keep` (a partial file
// whose bytes a later download resumes from).
struct TempFile {
  UniqueFd fd;
  std::string path;
  std::string progress_path;  // the partial's recorded length (open_partial), or empty
  UniqueFd progress_fd;       // opened by the first record_progress()
  bool keep = false;
  ~TempFile();
  TempFile() = default;
  TempFile(TempFile&&) = default;
  TempFile& operator=(TempFile&&) = default;
};

// A partial download found again (or started): its file and how much of it may be trusted.
struct Partial {
  TempFile file;
  std::uint64_t length = 0;           // bytes [0, length) were written in order
  std::optional<std::uint64_t> size;  // the blob's size, when the first download knew it
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

struct EvictStats {
  std::uint64_t blobs = 0;
  std::uint64_t bytes = 0;
  std::uint64_t skipped = 0;  // held (in use) or pinned
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
  // Partial downloads older than this are removed at start.
  std::chrono::milliseconds partial_max_age{std::chrono::hours(24)};
  // Below this much free space the index opens read-only (RocksDB needs room to open).
  std::uint64_t min_free_to_open = 8 << 20;
  // Tests only: runs in commit_blob() between the rename and the stat that records the file's
  // identity, with the file's final path (a write there must not be recorded as verified).
  std::function<void(const std::string&)> after_rename = nullptr;
};

class Store {
 public:
  // Creates the directories, opens (or creates) the index, and removes leftovers in tmp/.
  // Errors: kStorage naming the path and the cause.
  static Result<std::unique_ptr<Store>> open(StoreOptions options, const Clock& clock);
  ~Store();

  // A cached, verified blob opened for reading. Errors: kBlobUnknown (absent, or its file
  // vanished, has the wrong size or was changed since it was stored: the entry is dropped and
  // a changed file quarantined), kStorage.
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
  // A new temporary file for a download of `digest` (not resumable). Errors: kStorage.
  Result<TempFile> create_temp(const Digest& digest);
  // For content whose digest is known only once it is written (layerswarm-agent import).
  Result<TempFile> create_temp();
  // The partial download of `digest` left by an earlier run (or a new empty one), truncated to
  // its recorded length. One per digest: the caller keeps a single download per digest.
  // Errors: kStorage.
  Result<Partial> open_partial(const Digest& digest);
  // Records how many bytes of a partial file were written in order (and the blob's size).
  // Cheap (one pwrite, no fsync): a crash of the process loses nothing written; a crash of
  // the machine may, and the digest check at the end catches it.
  static void record_progress(TempFile& file, std::uint64_t length,
                              std::optional<std::uint64_t> size);
  // Removes a partial file and its record (its bytes are wrong or unwanted).
  static void discard(TempFile& file);
  // Makes a verified download durable and visible: fsync, rename into the tree, index it.
  // The caller has checked that the bytes hash to `digest`. Blocking. Errors: kStorage.
  // `extra`, when not empty, is the blob's extra record (put_extra), written in the same index
  // batch: a crash cannot leave the blob cached without it.
  Status commit_blob(TempFile& temp, const Digest& digest, std::uint64_t size,
                     std::string_view extra = {});

  // Bytes of the cached blobs and manifests: what the disk budget counts.
  std::uint64_t used_bytes() const;
  // A cached blob that eviction leaves alone while the hold lives (a response or an upload
  // in progress). Movable; releases on destruction; may outlive the store.
  struct HoldTable;
  class Hold {
   public:
    Hold() = default;
    Hold(std::shared_ptr<HoldTable> table, std::string key)
        : table_(std::move(table)), key_(std::move(key)) {}
    Hold(Hold&& o) noexcept = default;
    Hold& operator=(Hold&& o) noexcept;
    ~Hold();

   private:
    std::shared_ptr<HoldTable> table_;
    std::string key_;
  };
  Hold hold(const Digest& digest);
  // Blobs (and manifests) never evicted, by digest, and tags ("<registry>|<repo>|<tag>") never
  // swept however stale: the pinned images (cache.pins). Replaces the previous set.
  void set_pinned(std::vector<Digest> digests, std::vector<std::string> tags = {});
  // Adds to the pinned set (while a pin is being fetched).
  void add_pinned(const Digest& digest);
  bool pinned(const Digest& digest) const;
  bool tag_pinned(std::string_view registry, std::string_view repository,
                  std::string_view tag) const;
  // Removes cached blobs, least recently used first, until used_bytes() <= `target`; blobs
  // held or pinned stay. Manifests are not evicted (small; a manifest whose blobs went stays
  // valid and its blobs are fetched again on demand). Blocking. Errors: kStorage.
  Result<EvictStats> evict(std::uint64_t target, std::size_t max_items);
  // Moves a cached blob's file to <dir>/quarantine/ and forgets the blob (its bytes did not
  // hash to its digest, or the file changed after it was stored). Never fails (logged).
  void quarantine(const Digest& digest, const std::string& why);
  // Called (on the quarantining thread) for every blob quarantined. Set before use.
  void on_quarantine(std::function<void()> observer);
  // Up to `n` cached blobs after `after` in digest order ("" from the start): the scrub's walk.
  std::vector<std::pair<Digest, std::uint64_t>> blobs_after(const std::string& after,
                                                            std::size_t n);
  // Whether the index takes writes (false after a start on a full disk, until
  // reopen_writable() succeeds).
  bool writable() const;
  // Reopens a read-only index for writing when the disk has room again. Blocking.
  // Errors: kStorage (still no room, or RocksDB's error in words).
  Status reopen_writable();

  // Errors: kManifestUnknown, kStorage.
  Result<StoredManifest> get_manifest(const Digest& digest);
  // The caller has checked that `bytes` hash to `digest`. Errors: kStorage.
  Status put_manifest(const Digest& digest, std::string_view media_type, std::string_view bytes);

  std::optional<TagRecord> get_tag(std::string_view registry, std::string_view repository,
                                   std::string_view tag);
  Status put_tag(std::string_view registry, std::string_view repository, std::string_view tag,
                 const TagRecord& record);
  Status delete_tag(std::string_view registry, std::string_view repository, std::string_view tag);
  // Cached tags, in key order (registry, repository, tag), at most `max` of them.
  struct TagEntry {
    std::string registry, repository, tag;
    TagRecord record;
  };
  std::vector<TagEntry> tags(std::size_t max) const;
  // Removes a cached blob or manifest now (layerswarm cache rm). false: kept, because it is
  // pinned or being sent; true: removed or absent. Errors: kStorage (a file stays).
  Result<bool> remove(const Digest& digest);

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
  Result<TempFile> create_temp_named(const std::string& prefix);
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace layerswarm
