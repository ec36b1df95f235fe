#include "agent/import.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/clock.h"
#include "common/digest.h"
#include "common/mirror/pins.h"
#include "common/mirror/upstreams.h"
#include "common/reference.h"
#include "common/store.h"

namespace layerswarm::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::uint64_t kMaxManifest = 4 << 20;
constexpr const char* kDockerV2 = "application/vnd.docker.distribution.manifest.v2+json";

std::optional<std::string> read_small(const fs::path& path, std::uint64_t limit) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size > limit) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  if (!in && !in.eof()) return std::nullopt;
  return out.str();
}

// Unpacks a tar into `to`: regular files and directories only, no absolute or ".." paths.
Status untar(const std::string& file, const fs::path& to) {
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  if (archive_read_open_filename(a, file.c_str(), 1 << 20) != ARCHIVE_OK) {
    Error e(Errc::kConfigInvalid,
            file + ": " + (archive_error_string(a) ? archive_error_string(a) : "not an archive"));
    archive_read_free(a);
    return e;
  }
  Status result;
  archive_entry* entry = nullptr;
  for (int i = 0; i < 1'000'000; ++i) {
    const int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      result = Error(Errc::kConfigInvalid, file + ": " + archive_error_string(a));
      break;
    }
    const std::string name = archive_entry_pathname(entry);
    const fs::path rel = fs::path(name).lexically_normal();
    if (rel.is_absolute() || rel.empty() || *rel.begin() == "..") {
      result = Error(Errc::kConfigInvalid, file + ": an entry outside the archive: " + name);
      break;
    }
    if (archive_entry_filetype(entry) == AE_IFDIR) continue;
    if (archive_entry_filetype(entry) != AE_IFREG) continue;  // links and devices: not content
    const fs::path out = to / rel;
    std::error_code ec;
    fs::create_directories(out.parent_path(), ec);
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      result = Error(Errc::kStorage, "cannot write " + out.string());
      break;
    }
    const int w = archive_read_data_into_fd(a, fd);
    ::close(fd);
    if (w != ARCHIVE_OK) {
      result = Error(Errc::kConfigInvalid, file + ": " + archive_error_string(a));
      break;
    }
  }
  archive_read_free(a);
  return result;
}

class Importer {
 public:
  Importer(Store& store, mirror::Upstreams& upstreams) : store_(store), upstreams_(upstreams) {}

  struct Put {
    Digest digest;
    std::uint64_t size = 0;
    bool gzip = false;  // begins with gzip's magic (not known for a blob the cache had)
  };

  // Copies `path` into the cache, hashing it on the way, once. With `expect` a blob the cache
  // holds is not read, and other bytes are an error; without, the bytes name the blob.
  Result<Put> put_blob(const fs::path& path, const std::optional<Digest>& expect) {
    if (expect) {
      if (auto size = store_.blob_size(*expect)) {
        ++present_;
        return Put{*expect, *size, false};
      }
    }
    const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      return Error(Errc::kConfigInvalid,
                   "the archive lacks " + (expect ? expect->str() : path.filename().string()));
    }
    auto temp = expect ? store_.create_temp(*expect) : store_.create_temp();
    if (!temp) {
      ::close(in);
      return temp.error();
    }
    Hasher hasher(expect ? expect->algorithm() : Digest::Algorithm::kSha256);
    std::vector<char> buf(1 << 20);
    std::uint64_t size = 0;
    bool gzip = false;
    Status s;
    for (std::uint64_t i = 0; i < (1ULL << 40); ++i) {
      const ssize_t n = ::read(in, buf.data(), buf.size());
      if (n < 0) {
        s = Error(Errc::kStorage, "reading " + path.string());
        break;
      }
      if (n == 0) break;
      if (size == 0) gzip = n >= 2 && buf[0] == '\x1f' && buf[1] == '\x8b';
      hasher.update(buf.data(), static_cast<std::size_t>(n));
      if (::write(temp->fd.get(), buf.data(), static_cast<std::size_t>(n)) != n) {
        s = Error(Errc::kStorage, "writing into the cache");
        break;
      }
      size += static_cast<std::uint64_t>(n);
    }
    ::close(in);
    if (!s) return s.error();
    const Digest digest = hasher.finish();
    if (expect && digest != *expect) {
      return Error(Errc::kDigestMismatch, "the archive's " + expect->str() + " does not verify");
    }
    if (store_.blob_size(digest)) {
      ++present_;  // the temporary file goes with `temp`
    } else {
      if (auto c = store_.commit_blob(*temp, digest, size); !c) return c.error();
      ++added_;
      bytes_ += size;
    }
    return Put{digest, size, gzip};
  }

  // Files a verified manifest (and its blobs' repository) under `ref`.
  Status put_image(
      const ImageReference& ref, const Digest& digest, const std::string& media_type,
      const std::string& bytes, const std::vector<Digest>& blobs,
      const std::vector<std::pair<Digest, std::pair<std::string, std::string>>>& children) {
    auto target = upstreams_.resolve(ref.registry);
    if (!target) return target.error();
    const std::string repository = canonical_name(target->registry, ref.name);
    for (const auto& [child, manifest] : children) {
      if (auto s = store_.put_manifest(child, manifest.first, manifest.second); !s) return s;
      store_.note_shown(child, target->registry, repository);
    }
    for (const auto& b : blobs) store_.note_shown(b, target->registry, repository);
    if (auto s = store_.put_manifest(digest, media_type, bytes); !s) return s;
    store_.note_shown(digest, target->registry, repository);
    if (!ref.digest) {
      TagRecord tag{digest, media_type, bytes.size(), std::chrono::system_clock::now()};
      if (auto s = store_.put_tag(target->registry, repository, ref.tag, tag); !s) return s;
    }
    std::printf("imported %s/%s:%s as %s\n", target->registry.c_str(), repository.c_str(),
                ref.digest ? ref.digest->str().c_str() : ref.tag.c_str(), digest.str().c_str());
    return {};
  }

  std::size_t added_ = 0, present_ = 0;
  std::uint64_t bytes_ = 0;

 private:
  Store& store_;
  mirror::Upstreams& upstreams_;
};

Result<ImageReference> name_of(const std::string& as, const std::string& found) {
  const std::string name = as.empty() ? found : as;
  if (name.empty()) {
    return Error(Errc::kNameInvalid, "the archive does not name its image: give --as REFERENCE");
  }
  return parse_image_reference(name);
}

// An OCI image layout in `dir`: each image index.json names (containerd's name annotation, or
// --as), its manifest, an index's children present in the layout, and their blobs.
Status import_oci(Importer& importer, const fs::path& dir, const ImportOptions& o,
                  std::vector<ImageReference>& imported) {
  auto index_text = read_small(dir / "index.json", kMaxManifest);
  const json index = json::parse(index_text.value_or(""), nullptr, false);
  if (!index.is_object() || !index.contains("manifests")) {
    return Error(Errc::kConfigInvalid, "index.json is missing or not an OCI index");
  }
  auto blob_path = [&](const Digest& d) {
    return dir / "blobs" / std::string(d.algorithm_name()) / std::string(d.hex());
  };
  for (const auto& desc : index["manifests"]) {
    auto digest = Digest::parse(desc.value("digest", ""));
    if (!digest) return Error(Errc::kConfigInvalid, "index.json: a bad digest");
    const auto annotations = desc.value("annotations", json::object());
    auto ref = name_of(o.as, annotations.value("io.containerd.image.name", ""));
    if (!ref) return ref.error();
    auto bytes = read_small(blob_path(*digest), kMaxManifest);
    if (!bytes || Digest::sha256_of(*bytes) != *digest) {
      return Error(Errc::kDigestMismatch, "manifest " + digest->str() + " is missing or damaged");
    }
    const json manifest = json::parse(*bytes, nullptr, false);
    std::string media_type = desc.value("mediaType", manifest.value("mediaType", ""));
    std::vector<Digest> blobs;
    std::vector<std::pair<Digest, std::pair<std::string, std::string>>> children;
    std::vector<json> images = {manifest};
    for (const auto& child : manifest.value("manifests", json::array())) {
      auto d = Digest::parse(child.value("digest", ""));
      if (!d) continue;
      auto child_bytes = read_small(blob_path(*d), kMaxManifest);
      if (!child_bytes) continue;  // a platform the export left out
      if (Digest::sha256_of(*child_bytes) != *d) {
        return Error(Errc::kDigestMismatch, "manifest " + d->str() + " is damaged");
      }
      children.push_back({*d, {child.value("mediaType", ""), *child_bytes}});
      images.push_back(json::parse(*child_bytes, nullptr, false));
    }
    for (const auto& image : images) {
      if (!image.is_object()) continue;
      std::vector<json> descs;
      if (image.contains("config")) descs.push_back(image["config"]);
      for (const auto& l : image.value("layers", json::array())) descs.push_back(l);
      for (const auto& d : descs) {
        auto blob = Digest::parse(d.value("digest", ""));
        if (!blob) return Error(Errc::kConfigInvalid, "a manifest names a bad digest");
        if (auto put = importer.put_blob(blob_path(*blob), *blob); !put) return put.error();
        blobs.push_back(*blob);
      }
    }
    if (auto s = importer.put_image(*ref, *digest, media_type, *bytes, blobs, children); !s) {
      return s;
    }
    imported.push_back(*ref);
  }
  return {};
}

// A docker save / layerswarm export archive unpacked in `dir`: manifest.json names the config
// and layer files; a Docker v2 manifest is made from them (layers gzip or plain tar, as found).
Status import_docker(Importer& importer, const fs::path& dir, const ImportOptions& o,
                     std::vector<ImageReference>& imported) {
  auto text = read_small(dir / "manifest.json", kMaxManifest);
  const json list = json::parse(text.value_or(""), nullptr, false);
  if (!list.is_array()) return Error(Errc::kConfigInvalid, "manifest.json is missing");
  for (const auto& entry : list) {
    // The config's and layers' digests are their files': hashed as they go into the cache.
    const std::string config_name = entry.value("Config", "");
    if (config_name.empty()) return Error(Errc::kConfigInvalid, "a missing config");
    auto config = importer.put_blob((dir / config_name).lexically_normal(), std::nullopt);
    if (!config) return config.error();
    std::vector<Digest> blobs = {config->digest};
    json layers = json::array();
    for (const auto& l : entry.value("Layers", json::array())) {
      auto layer = importer.put_blob((dir / l.get<std::string>()).lexically_normal(), std::nullopt);
      if (!layer) return layer.error();
      blobs.push_back(layer->digest);
      layers.push_back(
          {{"mediaType", layer->gzip ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
                                     : "application/vnd.docker.image.rootfs.diff.tar"},
           {"size", layer->size},
           {"digest", layer->digest.str()}});
    }
    const json manifest = {{"schemaVersion", 2},
                           {"mediaType", kDockerV2},
                           {"config",
                            {{"mediaType", "application/vnd.docker.container.image.v1+json"},
                             {"size", config->size},
                             {"digest", config->digest.str()}}},
                           {"layers", layers}};
    const std::string bytes = manifest.dump();
    std::string found;
    const auto tags = entry.value("RepoTags", json::array());
    if (!tags.empty() && tags[0].is_string()) found = tags[0].get<std::string>();
    auto ref = name_of(o.as, found);
    if (!ref) return ref.error();
    if (auto s = importer.put_image(*ref, Digest::sha256_of(bytes), kDockerV2, bytes, blobs, {});
        !s) {
      return s;
    }
    imported.push_back(*ref);
  }
  return {};
}

// Adds `images` to the run-time pins (data_dir/pins.json, common/mirror/pins.h).
Status pin(const std::string& data_dir, const std::vector<ImageReference>& images) {
  const std::string path = data_dir + "/pins.json";
  auto pins = mirror::read_pin_file(path);
  if (!pins) return pins.error();
  for (const auto& image : images) {
    bool present = false;
    for (const auto& p : *pins) present = present || p.image.str() == image.str();
    if (!present) pins->push_back(mirror::PinSpec{image, {}});
  }
  return mirror::write_pin_file(path, *pins);
}

}  // namespace

int run_import(const AgentConfig& config, const ImportOptions& options) {
  std::error_code ec;
  if (!fs::exists(options.file, ec)) {
    std::fprintf(stderr, "layerswarm-agent import: %s: no such file\n", options.file.c_str());
    return 2;
  }
  SystemClock clock;
  StoreOptions store_options{config.data_dir};
  auto store = Store::open(store_options, clock);
  if (!store) {
    std::fprintf(stderr,
                 "layerswarm-agent import: cannot open the cache in %s: %s (a running agent "
                 "holds it: stop it first)\n",
                 config.data_dir.c_str(), store.error().what().c_str());
    return 1;
  }
  boost::asio::io_context ioc(1);
  mirror::Upstreams upstreams(ioc.get_executor(), config.mirror, clock, std::nullopt);
  Importer importer(**store, upstreams);
  fs::path dir = options.file;
  fs::path unpacked;
  Status s;
  if (!fs::is_directory(dir, ec)) {
    unpacked = fs::path(config.data_dir) / "tmp" / ("import-" + std::to_string(::getpid()));
    fs::remove_all(unpacked, ec);
    fs::create_directories(unpacked, ec);
    s = untar(options.file, unpacked);
    dir = unpacked;
  }
  std::vector<ImageReference> imported;
  if (s) {
    if (fs::exists(dir / "index.json", ec)) {
      s = import_oci(importer, dir, options, imported);
    } else if (fs::exists(dir / "manifest.json", ec)) {
      s = import_docker(importer, dir, options, imported);
    } else {
      s = Error(Errc::kConfigInvalid,
                options.file + ": neither an OCI layout (index.json) nor a docker archive");
    }
  }
  if (!unpacked.empty()) fs::remove_all(unpacked, ec);
  if (s && options.pin) s = pin(config.data_dir, imported);
  if (!s) {
    std::fprintf(stderr, "layerswarm-agent import: %s\n", s.error().what().c_str());
    return s.error().code == make_error_code(Errc::kNameInvalid) ? 2 : 1;
  }
  std::printf("%zu images, %zu blobs added (%.1f MiB), %zu already cached%s\n", imported.size(),
              importer.added_, static_cast<double>(importer.bytes_) / (1 << 20), importer.present_,
              options.pin ? "; pinned" : "");
  return 0;
}

}  // namespace layerswarm::agent
