#include "common/store.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

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
  if (!path.empty()) ::unlink(path.c_str());
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
struct ObjectRecord {
  char kind = 'b';
  std::uint64_t size = 0;
  std::string media_type;
  std::int64_t created = 0;
  std::int64_t accessed = 0;
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
  return json{{"k", std::string(1, r.kind)},
              {"s", r.size},
              {"t", r.media_type},
              {"c", r.created},
              {"a", r.accessed}}
      .dump();
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
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return r;
}

Error storage_error(const std::string& what, const rocksdb::Status& s) {
  return Error(Errc::kStorage, what + ": " + s.ToString());
}

Error errno_error(const std::string& what) {
  return Error(Errc::kStorage, what + ": " + std::strerror(errno));
}

}  // namespace

struct Store::Impl {
  StoreOptions options;
  const Clock* clock = nullptr;
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::WriteOptions write_options;
  std::mutex mu;  // serialises read-modify-write of object records (touch vs sweep vs commit)

  std::string tmp_dir() const { return options.dir + "/tmp"; }
  std::string path_for(const Digest& d) const {
    const std::string hex(d.hex());
    return options.dir + "/blobs/" + std::string(d.algorithm_name()) + "/" + hex.substr(0, 2) +
           "/" + hex;
  }

  std::optional<ObjectRecord> get_object(const Digest& d) {
    std::string value;
    if (!db->Get(rocksdb::ReadOptions(), object_key(d), &value).ok()) return std::nullopt;
    return decode_object(value);
  }

  // Index a new object (under mu).
  rocksdb::Status put_object(rocksdb::WriteBatch& batch, const Digest& d, ObjectRecord r) {
    if (auto old = get_object(d)) batch.Delete(access_key(old->accessed, d.str()));
    batch.Put(object_key(d), encode(r));
    batch.Put(access_key(r.accessed, d.str()), "");
    return db->Write(write_options, &batch);
  }

  // Drop an object's index entries (under mu).
  void forget(const Digest& d, const ObjectRecord& r) {
    rocksdb::WriteBatch batch;
    batch.Delete(object_key(d));
    batch.Delete(access_key(r.accessed, d.str()));
    if (r.kind == 'm') batch.Delete(manifest_key(d));
    if (r.kind == 'b') batch.Delete(extra_key(d));
    const std::string prefix = shown_prefix(d);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    int n = 0;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && n < 100'000;
         it->Next()) {
      batch.Delete(it->key());
      ++n;
    }
    db->Write(write_options, &batch);
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  if (impl_ && impl_->db) {
    auto s = impl_->db->Close();
    if (!s.ok()) LOG_WARN("closing the index: {}", s.ToString());
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
  // Downloads interrupted by a crash are not resumable yet: start over.
  for (const auto& entry : fs::directory_iterator(options.dir + "/tmp", ec)) {
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
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(db_options, options.dir + "/index", &db);
  if (!s.ok()) return storage_error("cannot open index " + options.dir + "/index", s);
  impl->db.reset(db);
  return std::unique_ptr<Store>(new Store(std::move(impl)));
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
  return OpenBlob{std::move(fd), rec->size, rec->accessed};
}

std::optional<std::uint64_t> Store::blob_size(const Digest& digest) {
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'b') return std::nullopt;
  return rec->size;
}

Result<TempFile> Store::create_temp(const Digest& digest) {
  TempFile t;
  std::string pattern =
      impl_->tmp_dir() + "/" + std::string(digest.hex().substr(0, 16)) + "-XXXXXX";
  const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) return errno_error("cannot create a temporary file in " + impl_->tmp_dir());
  t.fd = UniqueFd(fd);
  t.path = std::move(pattern);
  return t;
}

Status Store::commit_blob(TempFile& temp, const Digest& digest, std::uint64_t size) {
  if (::fsync(temp.fd.get()) != 0) return errno_error("fsync " + temp.path);
  const std::string final_path = impl_->path_for(digest);
  const std::string dir = final_path.substr(0, final_path.rfind('/'));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error(Errc::kStorage, "cannot create " + dir + ": " + ec.message());
  if (::rename(temp.path.c_str(), final_path.c_str()) != 0) {
    return errno_error("rename into " + final_path);
  }
  temp.path.clear();  // no longer ours to unlink
  if (UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dfd) {
    ::fsync(dfd.get());
  }
  const std::int64_t now = to_unix_ms(impl_->clock->now());
  std::lock_guard lock(impl_->mu);
  rocksdb::WriteBatch batch;
  auto s = impl_->put_object(batch, digest, ObjectRecord{'b', size, "", now, now});
  if (!s.ok()) return storage_error("index " + digest.str(), s);
  return {};
}

Status Store::put_extra(const Digest& digest, std::string_view record) {
  std::lock_guard lock(impl_->mu);
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'b') return Error(Errc::kBlobUnknown);
  auto s = impl_->db->Put(impl_->write_options, extra_key(digest), rocksdb::Slice(record));
  if (!s.ok()) return storage_error("extra " + digest.str(), s);
  return {};
}

std::optional<std::string> Store::get_extra(const Digest& digest) {
  std::string value;
  if (!impl_->db->Get(rocksdb::ReadOptions(), extra_key(digest), &value).ok()) return std::nullopt;
  return value;
}

std::optional<TimePoint> Store::shown_in(const Digest& digest, std::string_view registry,
                                         std::string_view repository) {
  std::string value;
  if (!impl_->db->Get(rocksdb::ReadOptions(), shown_key(digest, registry, repository), &value)
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
  auto s = impl_->db->Put(impl_->write_options, shown_key(digest, registry, repository), now);
  if (!s.ok())
    LOG_WARN("recording {} in {}/{}: {}", digest.str(), registry, repository, s.ToString());
}

void Store::forget_shown(const Digest& digest, std::string_view registry,
                         std::string_view repository) {
  (void)impl_->db->Delete(impl_->write_options, shown_key(digest, registry, repository));
}

std::vector<std::pair<Digest, std::string>> Store::extras() {
  std::vector<std::pair<Digest, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("x:"); it->Valid() && it->key().starts_with("x:"); it->Next()) {
    const std::string key = it->key().ToString();
    if (auto d = Digest::parse(key.substr(2))) out.emplace_back(*d, it->value().ToString());
  }
  return out;
}

Result<StoredManifest> Store::get_manifest(const Digest& digest) {
  auto rec = impl_->get_object(digest);
  if (!rec || rec->kind != 'm') return Error(Errc::kManifestUnknown);
  StoredManifest m;
  m.media_type = rec->media_type;
  m.accessed_ms = rec->accessed;
  if (!impl_->db->Get(rocksdb::ReadOptions(), manifest_key(digest), &m.bytes).ok()) {
    return Error(Errc::kManifestUnknown);
  }
  return m;
}

Status Store::put_manifest(const Digest& digest, std::string_view media_type,
                           std::string_view bytes) {
  const std::int64_t now = to_unix_ms(impl_->clock->now());
  std::lock_guard lock(impl_->mu);
  rocksdb::WriteBatch batch;
  batch.Put(manifest_key(digest), rocksdb::Slice(bytes.data(), bytes.size()));
  auto s = impl_->put_object(batch, digest,
                             ObjectRecord{'m', bytes.size(), std::string(media_type), now, now});
  if (!s.ok()) return storage_error("store manifest " + digest.str(), s);
  return {};
}

std::optional<TagRecord> Store::get_tag(std::string_view registry, std::string_view repository,
                                        std::string_view tag) {
  std::string value;
  if (!impl_->db->Get(rocksdb::ReadOptions(), tag_key(registry, repository, tag), &value).ok()) {
    return std::nullopt;
  }
  const json j = json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    auto digest = Digest::parse(j.at("d").get<std::string>());
    if (!digest) return std::nullopt;
    return TagRecord{*digest, j.at("t").get<std::string>(), j.at("s").get<std::uint64_t>(),
                     from_unix_ms(j.at("v").get<std::int64_t>())};
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
  auto s = impl_->db->Put(impl_->write_options, tag_key(registry, repository, tag), value);
  if (!s.ok()) return storage_error("store tag", s);
  return {};
}

Status Store::delete_tag(std::string_view registry, std::string_view repository,
                         std::string_view tag) {
  auto s = impl_->db->Delete(impl_->write_options, tag_key(registry, repository, tag));
  if (!s.ok()) return storage_error("delete tag", s);
  return {};
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
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
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
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("t:"); it->Valid() && it->key().starts_with("t:"); it->Next()) {
      const json j = json::parse(it->value().ToString(), nullptr, false);
      if (j.is_discarded() || !j.contains("v") || !j["v"].is_number_integer() ||
          j["v"].get<std::int64_t>() < tag_cutoff) {
        old_tags.push_back(it->key().ToString());
      }
    }
  }
  for (const auto& key : old_tags) {
    impl_->db->Delete(impl_->write_options, key);
    ++stats.tags;
  }
  return stats;
}

}  // namespace layerswarm
