#include "common/store.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"

namespace layerswarm {

namespace fs = std::filesystem;
using nlohmann::json;

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

TempFile::~TempFile() {
  if (keep) return;
  if (!path.empty()) ::unlink(path.c_str());
  if (!progress_path.empty()) ::unlink(progress_path.c_str());
}

namespace {

// Index records. Keys:
//   o:<digest>                   object: {k: "b"|"m", s: size, t: media type, c, a: ms}
//   a:<16 hex ms>:<digest>       access order (TTL sweep, later LRU)
//   m:<digest>                   manifest bytes
//   t:<registry>|<repo>|<tag>    tag: {d: digest, t: media type, s: size, v: validated ms}
//   x:<digest>                   a blob's extra record (the agent's chunk metainfo)
//   r:<digest>|<registry>|<repo> when the upstream last gave or confirmed the object in that
//                                repository (ms; docs/security.md "Per-repository access")
//   (an object record of a blob also holds its file's identity at commit: i, mt, ct)
struct FileIdentity {
  std::uint64_t ino = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

FileIdentity identity_of(const struct stat& st) {
  return FileIdentity{static_cast<std::uint64_t>(st.st_ino),
                      st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                      st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
}

struct ObjectRecord {
  char kind = 'b';
  std::uint64_t size = 0;
  std::string media_type;
  std::int64_t created = 0;
  std::int64_t accessed = 0;
  std::optional<FileIdentity> file;  // blobs committed by this version on
};

std::string object_key(const Digest& d) { return "o:" + d.str(); }
std::string manifest_key(const Digest& d) { return "m:" + d.str(); }
std::string extra_key(const Digest& d) { return "x:" + d.str(); }
std::string shown_prefix(const Digest& d) { return "r:" + d.str() + "|"; }
std::string shown_key(const Digest& d, std::string_view reg, std::string_view repo) {
  return shown_prefix(d) + std::string(reg) + "|" + std::string(repo);
}
std::string tag_key(std::string_view reg, std::string_view repo, std::string_view tag) {
  return "t:" + std::string(reg) + "|" + std::string(repo) + "|" + std::string(tag);
}
std::string access_key(std::int64_t ms, const std::string& digest) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(ms));
  return "a:" + std::string(buf) + ":" + digest;
}

std::string encode(const ObjectRecord& r) {
  json j{{"k", std::string(1, r.kind)},
         {"s", r.size},
         {"t", r.media_type},
         {"c", r.created},
         {"a", r.accessed}};
  if (r.file) {
    j["i"] = r.file->ino;
    j["mt"] = r.file->mtime_ns;
    j["ct"] = r.file->ctime_ns;
  }
  return j.dump();
}

std::optional<ObjectRecord> decode_object(const std::string& s) {
  const json j = json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  ObjectRecord r;
  try {
    r.kind = j.at("k").get<std::string>().at(0);
    r.size = j.at("s").get<std::uint64_t>();
    r.media_type = j.at("t").get<std::string>();
    r.created = j.at("c").get<std::int64_t>();
    r.accessed = j.at("a").get<std::int64_t>();
    if (j.contains("i")) {
      r.file = FileIdentity{j.at("i").get<std::uint64_t>(), j.at("mt").get<std::int64_t>(),
                            j.at("ct").get<std::int64_t>()};
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return r;
}

// RocksDB's status in words an operator can act on.
std::string describe(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return "no space left on the cache's disk (" + s.ToString() + ")";
  if (s.IsNotSupported() || s.IsIOError()) {
    if (s.ToString().find("read only") != std::string::npos ||
        s.ToString().find("read-only") != std::string::npos ||
        s.ToString().find("Not implemented") != std::string::npos) {
      return "the cache index is read-only (the disk was full at start; it becomes writable "
             "once space returns)";
    }
  }
  if (s.IsCorruption()) return "the cache index is corrupt (" + s.ToString() + ")";
  if (s.IsIOError()) return "disk error in the cache index (" + s.ToString() + ")";
  return s.ToString();
}

Error storage_error(const std::string& what, const rocksdb::Status& s) {
  return Error(Errc::kStorage, what + ": " + describe(s));
}

std::uint64_t free_bytes(const std::string& dir) {
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return ~std::uint64_t{0};
  return static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
}

std::string hex_of_partial(const std::string& name) {
  const auto dot = name.find(".partial");
  return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

Error errno_error(const std::string& what) {
  return Error(Errc::kStorage, what + ": " + std::strerror(errno));
}

}  // namespace

struct Store::HoldTable {
  std::mutex mu;
  std::unordered_map<std::string, int> holds;  // digest -> holds
  std::unordered_set<std::string> pinned;
  std::unordered_set<std::string> pinned_tags;  // "<registry>|<repo>|<tag>"
};

struct Store::Impl {
  StoreOptions options;
  const Clock* clock = nullptr;
  rocksdb::Options db_options;
  rocksdb::WriteOptions write_options;
  std::mutex mu;  // serialises read-modify-write of object records (touch vs sweep vs commit)
  std::atomic<std::uint64_t> used{0};  // sizes of the indexed objects
  std::shared_ptr<HoldTable> table = std::make_shared<HoldTable>();
  std::function<void()> quarantined;

  // The index; swapped once when a read-only start becomes writable (reopen_writable), so
  // every use takes its own reference.
  std::shared_ptr<rocksdb::DB> db() const {
    std::lock_guard lock(db_mu);
    return db_;
  }
  void set_db(std::shared_ptr<rocksdb::DB> d, bool read_only) {
    std::lock_guard lock(db_mu);
    db_ = std::move(d);
    read_only_ = read_only;
  }
  bool read_only() const {
    std::lock_guard lock(db_mu);
    return read_only_;
  }
  mutable std::mutex db_mu;
  std::shared_ptr<rocksdb::DB> db_;
  bool read_only_ = false;

  // Decoded tag records and manifests for the warm by-tag path, which otherwise reads three
  // records and parses two of them per request (docs/architecture.md "The path of a manifest
  // request"). Any change of the index's objects or tags empties it (changed(), called after
  // the write), and what a lookup read before a change is not kept.
  struct Hot {
    std::mutex mu;
    std::uint64_t generation = 0;  // the index's generation its entries were read at
    std::unordered_map<std::string, TagRecord> tags;            // by tag key
    std::unordered_map<std::string, StoredManifest> manifests;  // by digest
    std::size_t manifest_bytes = 0;
  };
  static constexpr std::size_t kHotEntries = 1024;
  static constexpr std::size_t kHotManifestBytes = 4 << 20;
  static constexpr std::size_t kHotManifestMax = 64 << 10;  // larger ones are read each time
  std::atomic<std::uint64_t> generation{0};
  Hot hot;

  void changed() { generation.fetch_add(1, std::memory_order_acq_rel); }
  // Under hot.mu: entries of an older generation are dropped.
  void hot_current(std::uint64_t g) {
    if (hot.generation == g) return;
    hot.tags.clear();
    hot.manifests.clear();
    hot.manifest_bytes = 0;
    hot.generation = g;
  }
  std::optional<TagRecord> hot_tag(const std::string& key) {
    std::lock_guard lock(hot.mu);
    hot_current(generation.load(std::memory_order_acquire));
    auto it = hot.tags.find(key);
    if (it == hot.tags.end()) return std::nullopt;
    return it->second;
  }
  // `read_at`: the generation before the record was read; kept only if nothing changed since.
  void keep_tag(const std::string& key, const TagRecord& r, std::uint64_t read_at) {
    std::lock_guard lock(hot.mu);
    if (generation.load(std::memory_order_acquire) != read_at) return;
    hot_current(read_at);
    if (hot.tags.size() >= kHotEntries) hot.tags.clear();
    hot.tags.insert_or_assign(key, r);
  }
  std::optional<StoredManifest> hot_manifest(const std::string& digest) {
    std::lock_guard lock(hot.mu);
    hot_current(generation.load(std::memory_order_acquire));
    auto it = hot.manifests.find(digest);
    if (it == hot.manifests.end()) return std::nullopt;
    return it->second;
  }
  void keep_manifest(const std::string& digest, const StoredManifest& m, std::uint64_t read_at) {
    if (m.bytes.size() > kHotManifestMax) return;
    std::lock_guard lock(hot.mu);
    if (generation.load(std::memory_order_acquire) != read_at) return;
    hot_current(read_at);
    if (hot.manifests.size() >= kHotEntries ||
        hot.manifest_bytes + m.bytes.size() > kHotManifestBytes) {
      hot.manifests.clear();
      hot.manifest_bytes = 0;
    }
    if (hot.manifests.insert_or_assign(digest, m).second) hot.manifest_bytes += m.bytes.size();
  }

  bool is_held(const std::string& key) const {
    std::lock_guard lock(table->mu);
    return table->holds.count(key) > 0 || table->pinned.count(key) > 0;
  }
  std::string index_dir() const { return options.dir + "/index"; }
  std::string partial_path(const Digest& d) const {
    return tmp_dir() + "/" + std::string(d.hex()) + ".partial";
  }

  std::string tmp_dir() const { return options.dir + "/tmp"; }
  std::string path_for(const Digest& d) const {
    const std::string hex(d.hex());
    return options.dir + "/blobs/" + std::string(d.algorithm_name()) + "/" + hex.substr(0, 2) +
           "/" + hex;
  }

  std::optional<ObjectRecord> get_object(const Digest& d) {
    std::string value;
    if (!db()->Get(rocksdb::ReadOptions(), object_key(d), &value).ok()) return std::nullopt;
    return decode_object(value);
  }

  // Index a new object (under mu).
  rocksdb::Status put_object(rocksdb::WriteBatch& batch, const Digest& d, ObjectRecord r) {
    if (auto old = get_object(d)) batch.Delete(access_key(old->accessed, d.str()));
    batch.Put(object_key(d), encode(r));
    batch.Put(access_key(r.accessed, d.str()), "");
    auto s = db()->Write(write_options, &batch);
    changed();
    return s;
  }

  // Moves the blob's file out of the cache into quarantine/ (removes it when it cannot),
  // with the log line operators and tests look for, and tells the observer.
  void move_to_quarantine(const Digest& digest, const std::string& why) {
    const std::string dir = options.dir + "/quarantine";
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string to =
        dir + "/" + std::string(digest.hex()) + "-" + std::to_string(to_unix_ms(clock->now()));
    const std::string from = path_for(digest);
    if (ec || ::rename(from.c_str(), to.c_str()) != 0) {
      LOG_ERROR("blob {}: {}; could not quarantine it ({}), removing it", digest.str(), why,
                ec ? ec.message() : std::strerror(errno));
      ::unlink(from.c_str());
    } else {
      LOG_ERROR(
          "blob {}: {}; quarantined as {} and dropped from the cache (fetched again when "
          "next asked for)",
          digest.str(), why, to);
    }
    if (quarantined) quarantined();
  }

  // Drop an object's index entries (under mu).
  void forget(const Digest& d, const ObjectRecord& r) {
    rocksdb::WriteBatch batch;
    batch.Delete(object_key(d));
    batch.Delete(access_key(r.accessed, d.str()));
    if (r.kind == 'm') batch.Delete(manifest_key(d));
    if (r.kind == 'b') batch.Delete(extra_key(d));
    const std::string prefix = shown_prefix(d);
    auto index = db();
    std::unique_ptr<rocksdb::Iterator> it(index->NewIterator(rocksdb::ReadOptions()));
    int n = 0;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && n < 100'000;
         it->Next()) {
      batch.Delete(it->key());
      ++n;
    }
    it.reset();
    const auto s = index->Write(write_options, &batch);
    changed();
    if (s.ok()) {
      used -= std::min<std::uint64_t>(used, r.size);
    } else {
      LOG_WARN("forgetting {} in the cache index: {}", d.str(), describe(s));
    }
  }
  // Unlinks a blob's file and forgets it (under mu). Errors: kStorage (the file stays).
  Status remove_blob(const Digest& d, const ObjectRecord& r) {
    const std::string path = path_for(d);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("unlink " + path);
    forget(d, r);
    return {};
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  if (impl_) {
    if (auto db = impl_->db()) {
      auto s = db->Close();
      if (!s.ok()) LOG_WARN("closing the index: {}", describe(s));
    }
  }
}

Result<std::unique_ptr<Store>> Store::open(StoreOptions options, const Clock& clock) {
  std::error_code ec;
  for (const char* sub : {"blobs", "tmp", "index"}) {
    fs::create_directories(options.dir + "/" + sub, ec);
    if (ec)
      return Error(Errc::kStorage,
                   "cannot create " + options.dir + "/" + sub + ": " + ec.message());
  }
  // Partial downloads stay to be resumed (open_partial), unless stale; anything else in tmp/
  // is a leftover (create_temp's files).
  const auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(options.dir + "/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code time_ec;
    const auto mtime = fs::last_write_time(entry.path(), time_ec);
    const bool fresh = !time_ec && now - mtime < options.partial_max_age;
    if (!hex_of_partial(name).empty() && entry.is_regular_file() && fresh) continue;
    fs::remove_all(entry.path(), ec);
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->clock = &clock;
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.max_write_buffer_number = 2;
  db_options.max_open_files = 256;
  db_options.keep_log_file_num = 2;
  db_options.max_log_file_size = 1 << 20;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.max_total_wal_size = 16 << 20;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  impl->db_options = db_options;
  rocksdb::DB* db = nullptr;
  // RocksDB writes a new MANIFEST and log when it opens; on a full disk that fails (7.8 even
  // aborts on an assertion). With too little room the index opens read-only instead: cached
  // content is served, nothing is stored until reopen_writable() succeeds.
  const std::uint64_t free = free_bytes(options.dir);
  const bool writable_fs = ::access((options.dir + "/index").c_str(), W_OK) == 0;
  const bool exists = fs::exists(options.dir + "/index/CURRENT", ec);
  if (free < options.min_free_to_open && exists) {
    LOG_ERROR(
        "only {} bytes free on the cache's disk ({}): the cache is read-only until space "
        "returns (cached content is served; new content streams through uncached)",
        free, options.dir);
    auto s = rocksdb::DB::OpenForReadOnly(db_options, impl->index_dir(), &db);
    if (!s.ok()) return storage_error("cannot open index " + impl->index_dir(), s);
    impl->set_db(std::shared_ptr<rocksdb::DB>(db), true);
  } else {
    if (free < options.min_free_to_open || !writable_fs) {
      return Error(Errc::kStorage, "cannot create the cache index in " + impl->index_dir() + ": " +
                                       (writable_fs ? "no space left" : "not writable"));
    }
    auto s = rocksdb::DB::Open(db_options, impl->index_dir(), &db);
    if (!s.ok()) return storage_error("cannot open index " + impl->index_dir(), s);
    impl->set_db(std::shared_ptr<rocksdb::DB>(db), false);
  }
  // What the cache holds, for the disk budget.
  {
    std::uint64_t used = 0;
    std::unique_ptr<rocksdb::Iterator> it(impl->db()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("o:"); it->Valid() && it->key().starts_with("o:"); it->Next()) {
      if (auto r = decode_object(it->value().ToString())) used += r->size;
    }
    impl->used = used;
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

bool Store::writable() const { return !impl_->read_only(); }

Status Store::reopen_writable() {
  if (!impl_->read_only()) return {};
  const std::uint64_t free = free_bytes(impl_->options.dir);
  if (free < impl_->options.min_free_to_open) {
    return Error(Errc::kStorage, "still only " + std::to_string(free) + " bytes free");
  }
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(impl_->db_options, impl_->index_dir(), &db);
  if (!s.ok()) return storage_error("reopening the cache index", s);
  impl_->set_db(std::shared_ptr<rocksdb::DB>(db), false);
  impl_->changed();
  LOG_INFO("the cache's disk has room again ({} bytes free): caching resumes", free);
  return {};
}

std::uint64_t Store::used_bytes() const { return impl_->used.load(); }

Store::Hold& Store::Hold::operator=(Hold&& o) noexcept {
  if (this != &o) {
    Hold old(std::move(*this));  // released at the end of this scope
    table_ = std::move(o.table_);
    key_ = std::move(o.key_);
  }
  return *this;
}

Store::Hold::~Hold() {
  if (!table_) return;
  std::lock_guard lock(table_->mu);
  if (auto it = table_->holds.find(key_); it != table_->holds.end() && --it->second <= 0) {
    table_->holds.erase(it);
  }
  table_.reset();
}

Store::Hold Store::hold(const Digest& digest) {
  std::string key = digest.str();
  {
    std::lock_guard lock(impl_->table->mu);
    ++impl_->table->holds[key];
  }
  return Hold(impl_->table, std::move(key));
}

void Store::set_pinned(std::vector<Digest> digests, std::vector<std::string> tags) {
  std::unordered_set<std::string> keys;
  for (const auto& d : digests) keys.insert(d.str());
  std::unordered_set<std::string> tag_keys(tags.begin(), tags.end());
  std::lock_guard lock(impl_->table->mu);
  impl_->table->pinned = std::move(keys);
  impl_->table->pinned_tags = std::move(tag_keys);
}

void Store::add_pinned(const Digest& digest) {
  std::lock_guard lock(impl_->table->mu);
  impl_->table->pinned.insert(digest.str());
}

bool Store::tag_pinned(std::string_view registry, std::string_view repository,
                       std::string_view tag) const {
  const std::string key = tag_key(registry, repository, tag).substr(2);
  std::lock_guard lock(impl_->table->mu);
  return impl_->table->pinned_tags.count(key) > 0;
}

bool Store::pinned(const Digest& digest) const {
  std::lock_guard lock(impl_->table->mu);
  return impl_->table->pinned.count(digest.str()) > 0;
}

Result<EvictStats> Store::evict(std::uint64_t target, std::size_t max_items) {
  EvictStats stats;
  if (impl_->used.load() <= target) return stats;
  // Least recently used first: the access-order keys, oldest first. Taken in slices, so
  // the iterator never outlives a removal.
  std::string from = "a:";
  for (std::size_t examined = 0; examined < max_items && impl_->used.load() > target;) {
    std::vector<std::string> slice;
    {
      auto index = impl_->db();  // outlives the iterator (reopen_writable swaps it)
      std::unique_ptr<rocksdb::Iterator> it(index->NewIterator(rocksdb::ReadOptions()));
      for (it->Seek(from); it->Valid() && it->key().starts_with("a:") && slice.size() < 256;
           it->Next()) {
        slice.push_back(it->key().ToString());
      }
    }
    if (slice.empty()) break;
    from = slice.back() + '\x01';
    for (const auto& key : slice) {
      if (impl_->used.load() <= target || ++examined > max_items) break;
      auto digest = Digest::parse(key.substr(2 + 16 + 1));
      if (!digest) continue;
      if (impl_->is_held(digest->str())) {
        ++stats.skipped;
        continue;
      }
      std::lock_guard lock(impl_->mu);
      auto rec = impl_->get_object(*digest);
      if (!rec || rec->kind != 'b') continue;
      if (auto s = impl_->remove_blob(*digest, *rec); !s) return s.error();
      ++stats.blobs;
      stats.bytes += rec->size;
    }
  }
  return stats;
}

void Store::quarantine(const Digest& digest, const std::string& why) {
  std::lock_guard lock(impl_->mu);
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'b') return;
  impl_->forget(digest, *rec);
  impl_->move_to_quarantine(digest, why);
}

void Store::on_quarantine(std::function<void()> observer) {
  impl_->quarantined = std::move(observer);
}

std::vector<std::pair<Digest, std::uint64_t>> Store::blobs_after(const std::string& after,
                                                                 std::size_t n) {
  std::vector<std::pair<Digest, std::uint64_t>> out;
  auto index = impl_->db();  // outlives the iterator (reopen_writable swaps it)
  std::unique_ptr<rocksdb::Iterator> it(index->NewIterator(rocksdb::ReadOptions()));
  const std::string start = after.empty() ? "o:" : "o:" + after + '\x01';
  for (it->Seek(start); it->Valid() && it->key().starts_with("o:") && out.size() < n; it->Next()) {
    auto rec = decode_object(it->value().ToString());
    if (!rec || rec->kind != 'b') continue;
    if (auto d = Digest::parse(it->key().ToString().substr(2))) out.emplace_back(*d, rec->size);
  }
  return out;
}

const std::string& Store::dir() const { return impl_->options.dir; }
std::string Store::blob_path(const Digest& digest) const { return impl_->path_for(digest); }

Result<OpenBlob> Store::open_blob(const Digest& digest) {
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'b') return Error(Errc::kBlobUnknown);
  const std::string path = impl_->path_for(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != rec->size) {
    LOG_WARN("cached blob {} is missing or has the wrong size; dropping it", digest.str());
    std::lock_guard lock(impl_->mu);
    ::unlink(path.c_str());
    impl_->forget(digest, *rec);
    return Error(Errc::kBlobUnknown);
  }
  // A file written, replaced or touched since it was stored: its bytes are no longer the ones
  // verified (free: one fstat). Rot that leaves the metadata alone is the scrub's to find.
  if (rec->file && !(identity_of(st) == *rec->file)) {
    fd = UniqueFd();
    quarantine(digest, "the cached file changed after it was verified (inode, mtime or ctime)");
    return Error(Errc::kBlobUnknown);
  }
  return OpenBlob{std::move(fd), rec->size, rec->accessed};
}

std::optional<std::uint64_t> Store::blob_size(const Digest& digest) {
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'b') return std::nullopt;
  return rec->size;
}

Result<TempFile> Store::create_temp() { return create_temp_named("new"); }

Result<TempFile> Store::create_temp(const Digest& digest) {
  return create_temp_named(std::string(digest.hex().substr(0, 16)));
}

Result<TempFile> Store::create_temp_named(const std::string& prefix) {
  TempFile t;
  std::string pattern = impl_->tmp_dir() + "/" + prefix + "-XXXXXX";
  const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) return errno_error("cannot create a temporary file in " + impl_->tmp_dir());
  t.fd = UniqueFd(fd);
  t.path = std::move(pattern);
  return t;
}

Status Store::commit_blob(TempFile& temp, const Digest& digest, std::uint64_t size,
                          std::string_view extra) {
  if (::fsync(temp.fd.get()) != 0) return errno_error("fsync " + temp.path);
  // The file as verified. Its identity is recorded after the rename (which changes the
  // ctime); a write in between changes the mtime (or the size), and such a file is not
  // recorded as verified. (Where the kernel keeps coarse timestamps, a write within the same
  // clock tick as the last verified one keeps the mtime: the scrub finds those.)
  struct stat verified {};
  if (::fstat(temp.fd.get(), &verified) != 0) return errno_error("fstat " + temp.path);
  const std::string final_path = impl_->path_for(digest);
  const std::string dir = final_path.substr(0, final_path.rfind('/'));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error(Errc::kStorage, "cannot create " + dir + ": " + ec.message());
  if (::rename(temp.path.c_str(), final_path.c_str()) != 0) {
    return errno_error("rename into " + final_path);
  }
  temp.path.clear();  // no longer ours to unlink
  if (!temp.progress_path.empty()) ::unlink(temp.progress_path.c_str());
  temp.progress_path.clear();
  if (UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dfd) {
    ::fsync(dfd.get());
  }
  if (impl_->options.after_rename) impl_->options.after_rename(final_path);
  // The identity after the rename (a rename changes the ctime).
  struct stat st {};
  if (::fstat(temp.fd.get(), &st) != 0) return errno_error("fstat " + final_path);
  const std::int64_t now = to_unix_ms(impl_->clock->now());
  std::lock_guard lock(impl_->mu);
  if (st.st_size != verified.st_size || st.st_mtim.tv_sec != verified.st_mtim.tv_sec ||
      st.st_mtim.tv_nsec != verified.st_mtim.tv_nsec) {
    impl_->move_to_quarantine(digest, "the file changed while it was committed");
    return Error(Errc::kStorage, "blob " + digest.str() + " changed while it was committed");
  }
  const auto old = impl_->get_object(digest);
  rocksdb::WriteBatch batch;
  ObjectRecord rec{'b', size, "", now, now, identity_of(st)};
  if (!extra.empty()) batch.Put(extra_key(digest), rocksdb::Slice(extra.data(), extra.size()));
  auto s = impl_->put_object(batch, digest, rec);
  if (!s.ok()) {
    ::unlink(final_path.c_str());  // not indexed: not cached
    return storage_error("index " + digest.str(), s);
  }
  impl_->used += size;
  if (old) impl_->used -= std::min<std::uint64_t>(impl_->used, old->size);
  return {};
}

Result<Partial> Store::open_partial(const Digest& digest) {
  Partial p;
  p.file.path = impl_->partial_path(digest);
  p.file.progress_path = p.file.path + ".len";
  p.file.keep = true;
  const int fd = ::open(p.file.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("cannot create " + p.file.path);
  p.file.fd = UniqueFd(fd);
  // "<length> <size or ->": the length written in order, and the blob's size when known.
  std::string text(64, '\0');
  if (UniqueFd lf(::open(p.file.progress_path.c_str(), O_RDONLY | O_CLOEXEC)); lf) {
    const ssize_t n = ::pread(lf.get(), text.data(), text.size() - 1, 0);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    unsigned long long length = 0;
    char size_text[32] = {0};
    if (std::sscanf(text.c_str(), "%llu %31s", &length, size_text) == 2) {
      p.length = length;
      unsigned long long size = 0;
      if (std::sscanf(size_text, "%llu", &size) == 1) p.size = size;
    }
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("fstat " + p.file.path);
  p.length = std::min<std::uint64_t>(p.length, static_cast<std::uint64_t>(st.st_size));
  if (p.size && p.length > *p.size) p.length = 0;  // inconsistent: start over
  if (::ftruncate(fd, static_cast<off_t>(p.length)) != 0) {
    return errno_error("truncating " + p.file.path);
  }
  return p;
}

void Store::record_progress(TempFile& file, std::uint64_t length,
                            std::optional<std::uint64_t> size) {
  if (file.progress_path.empty()) return;
  char text[64];
  const int n = std::snprintf(text, sizeof text, "%llu %s                    ",
                              static_cast<unsigned long long>(length),
                              size ? std::to_string(*size).c_str() : "-");
  if (!file.progress_fd) {
    file.progress_fd =
        UniqueFd(::open(file.progress_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  }
  if (!file.progress_fd ||
      ::pwrite(file.progress_fd.get(), text, static_cast<std::size_t>(std::min(n, 48)), 0) < 0) {
    LOG_DEBUG("recording the progress of {}: {}", file.path, std::strerror(errno));
  }
}

void Store::discard(TempFile& file) {
  if (!file.path.empty()) ::unlink(file.path.c_str());
  if (!file.progress_path.empty()) ::unlink(file.progress_path.c_str());
  file.path.clear();
  file.progress_path.clear();
}

Status Store::put_extra(const Digest& digest, std::string_view record) {
  std::lock_guard lock(impl_->mu);
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'b') return Error(Errc::kBlobUnknown);
  auto s = impl_->db()->Put(impl_->write_options, extra_key(digest), rocksdb::Slice(record));
  if (!s.ok()) return storage_error("extra " + digest.str(), s);
  return {};
}

std::optional<std::string> Store::get_extra(const Digest& digest) {
  std::string value;
  if (!impl_->db()->Get(rocksdb::ReadOptions(), extra_key(digest), &value).ok())
    return std::nullopt;
  return value;
}

std::optional<TimePoint> Store::shown_in(const Digest& digest, std::string_view registry,
                                         std::string_view repository) {
  std::string value;
  if (!impl_->db()
           ->Get(rocksdb::ReadOptions(), shown_key(digest, registry, repository), &value)
           .ok()) {
    return std::nullopt;
  }
  std::int64_t ms = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return from_unix_ms(ms);
}

void Store::note_shown(const Digest& digest, std::string_view registry,
                       std::string_view repository) {
  const std::string now = std::to_string(to_unix_ms(impl_->clock->now()));
  auto s = impl_->db()->Put(impl_->write_options, shown_key(digest, registry, repository), now);
  if (!s.ok())
    LOG_WARN("recording {} in {}/{}: {}", digest.str(), registry, repository, s.ToString());
}

void Store::forget_shown(const Digest& digest, std::string_view registry,
                         std::string_view repository) {
  (void)impl_->db()->Delete(impl_->write_options, shown_key(digest, registry, repository));
}

std::vector<std::pair<Digest, std::string>> Store::extras() {
  std::vector<std::pair<Digest, std::string>> out;
  auto index = impl_->db();  // outlives the iterator (reopen_writable swaps it)
  std::unique_ptr<rocksdb::Iterator> it(index->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("x:"); it->Valid() && it->key().starts_with("x:"); it->Next()) {
    const std::string key = it->key().ToString();
    if (auto d = Digest::parse(key.substr(2))) out.emplace_back(*d, it->value().ToString());
  }
  return out;
}

Result<StoredManifest> Store::get_manifest(const Digest& digest) {
  const std::string& key = digest.str();
  if (auto hit = impl_->hot_manifest(key)) return std::move(*hit);
  const std::uint64_t read_at = impl_->generation.load(std::memory_order_acquire);
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'm') return Error(Errc::kManifestUnknown);
  StoredManifest m;
  m.media_type = rec->media_type;
  m.accessed_ms = rec->accessed;
  if (!impl_->db()->Get(rocksdb::ReadOptions(), manifest_key(digest), &m.bytes).ok()) {
    return Error(Errc::kManifestUnknown);
  }
  impl_->keep_manifest(key, m, read_at);
  return m;
}

Status Store::put_manifest(const Digest& digest, std::string_view media_type,
                           std::string_view bytes) {
  const std::int64_t now = to_unix_ms(impl_->clock->now());
  std::lock_guard lock(impl_->mu);
  rocksdb::WriteBatch batch;
  batch.Put(manifest_key(digest), rocksdb::Slice(bytes.data(), bytes.size()));
  const auto old = impl_->get_object(digest);
  auto s = impl_->put_object(
      batch, digest,
      ObjectRecord{'m', bytes.size(), std::string(media_type), now, now, std::nullopt});
  if (!s.ok()) return storage_error("store manifest " + digest.str(), s);
  impl_->used += bytes.size();
  if (old) impl_->used -= std::min<std::uint64_t>(impl_->used, old->size);
  return {};
}

std::optional<TagRecord> Store::get_tag(std::string_view registry, std::string_view repository,
                                        std::string_view tag) {
  const std::string key = tag_key(registry, repository, tag);
  if (auto hit = impl_->hot_tag(key)) return hit;
  const std::uint64_t read_at = impl_->generation.load(std::memory_order_acquire);
  std::string value;
  if (!impl_->db()->Get(rocksdb::ReadOptions(), key, &value).ok()) return std::nullopt;
  const json j = json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    auto digest = Digest::parse(j.at("d").get<std::string>());
    if (!digest) return std::nullopt;
    TagRecord r{*digest, j.at("t").get<std::string>(), j.at("s").get<std::uint64_t>(),
                from_unix_ms(j.at("v").get<std::int64_t>())};
    impl_->keep_tag(key, r, read_at);
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Status Store::put_tag(std::string_view registry, std::string_view repository, std::string_view tag,
                      const TagRecord& r) {
  const std::string value = json{
      {"d", r.digest.str()},
      {"t", r.media_type},
      {"s", r.size},
      {"v",
       to_unix_ms(r.validated)}}.dump();
  auto s = impl_->db()->Put(impl_->write_options, tag_key(registry, repository, tag), value);
  impl_->changed();
  if (!s.ok()) return storage_error("store tag", s);
  return {};
}

Status Store::delete_tag(std::string_view registry, std::string_view repository,
                         std::string_view tag) {
  auto s = impl_->db()->Delete(impl_->write_options, tag_key(registry, repository, tag));
  impl_->changed();
  if (!s.ok()) return storage_error("delete tag", s);
  return {};
}

std::vector<Store::TagEntry> Store::tags(std::size_t max) const {
  std::vector<TagEntry> out;
  auto index = impl_->db();  // outlives the iterator (reopen_writable swaps it)
  std::unique_ptr<rocksdb::Iterator> it(index->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("t:"); it->Valid() && it->key().starts_with("t:") && out.size() < max; it->Next()) {
    const std::string key = it->key().ToString().substr(2);
    const auto first = key.find('|');
    const auto last = key.rfind('|');
    if (first == std::string::npos || last == first) continue;
    const json j = json::parse(it->value().ToString(), nullptr, false);
    if (!j.is_object() || !j.contains("d") || !j["d"].is_string()) continue;
    auto digest = Digest::parse(j["d"].get<std::string>());
    if (!digest) continue;
    out.push_back(TagEntry{
        key.substr(0, first), key.substr(first + 1, last - first - 1), key.substr(last + 1),
        TagRecord{*digest, j.value("t", std::string()), j.value("s", std::uint64_t{0}),
                  from_unix_ms(j.value("v", std::int64_t{0}))}});
  }
  return out;
}

Result<bool> Store::remove(const Digest& digest) {
  if (impl_->is_held(digest.str())) return false;
  std::lock_guard lock(impl_->mu);
  auto rec = impl_->get_object(digest);
  if (!rec) return true;
  if (rec->kind == 'b') {
    if (auto s = impl_->remove_blob(digest, *rec); !s) return s.error();
  } else {
    impl_->forget(digest, *rec);
  }
  return true;
}

void Store::touch(const Digest& digest, std::int64_t accessed_ms) {
  const std::int64_t now = to_unix_ms(impl_->clock->now());
  if (now - accessed_ms < impl_->options.access_granularity.count()) return;
  touch(digest);
}

void Store::touch(const Digest& digest) {
  const std::int64_t now = to_unix_ms(impl_->clock->now());
  auto rec = impl_->get_object(digest);
  if (!rec || now - rec->accessed < impl_->options.access_granularity.count()) return;
  std::lock_guard lock(impl_->mu);
  rec = impl_->get_object(digest);  // again, under the lock: a sweep may have removed it
  if (!rec) return;
  rec->accessed = now;
  rocksdb::WriteBatch batch;
  auto s = impl_->put_object(batch, digest, *rec);
  if (!s.ok()) LOG_WARN("recording access to {}: {}", digest.str(), s.ToString());
}

Result<SweepStats> Store::sweep(TimePoint objects_before, TimePoint tags_before,
                                std::size_t max_items) {
  SweepStats stats;
  const std::string cutoff = access_key(to_unix_ms(objects_before), "");
  std::vector<std::string> expired;
  {
    auto index = impl_->db();  // outlives the iterator (reopen_writable swaps it)
    std::unique_ptr<rocksdb::Iterator> it(index->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("a:"); it->Valid() && expired.size() < max_items; it->Next()) {
      const std::string key = it->key().ToString();
      if (key.compare(0, 2, "a:") != 0 || key >= cutoff) break;
      expired.push_back(key.substr(2 + 16 + 1));
    }
  }
  for (const auto& text : expired) {
    auto digest = Digest::parse(text);
    if (!digest) continue;
    std::lock_guard lock(impl_->mu);
    auto rec = impl_->get_object(*digest);
    if (!rec || rec->accessed >= to_unix_ms(objects_before)) continue;  // touched meanwhile
    if (impl_->is_held(digest->str())) continue;                        // in use or pinned
    if (rec->kind == 'b') {
      const std::string path = impl_->path_for(*digest);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("unlink " + path);
      ++stats.blobs;
    } else {
      ++stats.manifests;
    }
    stats.bytes += rec->size;
    impl_->forget(*digest, *rec);
  }

  const std::int64_t tag_cutoff = to_unix_ms(tags_before);
  std::vector<std::string> old_tags;
  {
    auto index = impl_->db();  // outlives the iterator (reopen_writable swaps it)
    std::unique_ptr<rocksdb::Iterator> it(index->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("t:"); it->Valid() && it->key().starts_with("t:"); it->Next()) {
      const json j = json::parse(it->value().ToString(), nullptr, false);
      if (j.is_discarded() || !j.contains("v") || !j["v"].is_number_integer() ||
          j["v"].get<std::int64_t>() < tag_cutoff) {
        old_tags.push_back(it->key().ToString());
      }
    }
  }
  {
    // Pinned tags stay however stale (an edge node offline for weeks).
    std::lock_guard lock(impl_->table->mu);
    const auto& pinned = impl_->table->pinned_tags;
    std::erase_if(old_tags,
                  [&](const std::string& key) { return pinned.count(key.substr(2)) > 0; });
  }
  for (const auto& key : old_tags) {
    impl_->db()->Delete(impl_->write_options, key);
    ++stats.tags;
  }
  if (!old_tags.empty()) impl_->changed();
  return stats;
}

}  // namespace layerswarm
