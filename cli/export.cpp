#include "cli/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/async.h"
#include "common/digest.h"
#include "common/http_client.h"
#include "common/reference.h"
#include "layerswarm_version.h"

namespace layerswarm::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Sink = std::function<Status(const char*, std::size_t)>;

constexpr std::size_t kMaxManifest = 4 << 20;
constexpr const char* kAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

bool is_index(const std::string& media_type) {
  return media_type == "application/vnd.oci.image.index.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.list.v2+json";
}

// One verified descriptor's worth of content.
struct Manifest {
  std::string media_type;
  std::string body;
  Digest digest;
};

// A `docker load` archive written with libarchive: <config>.json, <layer>/layer.tar (the blob
// as the registry has it, compressed or not: docker load inflates), manifest.json.
class DockerArchive {
 public:
  ~DockerArchive() {
    if (a_) archive_write_free(a_);
  }
  Status open(const std::string& path) {
    a_ = archive_write_new();
    if (!a_ || archive_write_set_format_pax_restricted(a_) != ARCHIVE_OK ||
        archive_write_open_filename(a_, path.c_str()) != ARCHIVE_OK) {
      return error("cannot create " + path);
    }
    return {};
  }
  Status begin(const std::string& name, std::uint64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    const int r = archive_write_header(a_, e);
    archive_entry_free(e);
    return r == ARCHIVE_OK ? Status() : error("writing " + name);
  }
  Status write(const char* data, std::size_t size) {
    return archive_write_data(a_, data, size) == static_cast<la_ssize_t>(size)
               ? Status()
               : error("writing the archive");
  }
  Status add(const std::string& name, std::string_view data) {
    if (auto s = begin(name, data.size()); !s) return s;
    return write(data.data(), data.size());
  }
  Status close() {
    const int r = archive_write_close(a_);
    return r == ARCHIVE_OK ? Status() : error("closing the archive");
  }

 private:
  Error error(const std::string& what) const {
    return Error(Errc::kStorage, what + ": " +
                                     (a_ && archive_error_string(a_) ? archive_error_string(a_)
                                                                     : "libarchive failed"));
  }
  archive* a_ = nullptr;
};

class Exporter {
 public:
  Exporter(asio::any_io_executor executor, const ExportOptions& options)
      : client_(executor, client_options()), o_(options) {}

  Task<Status> run();

 private:
  static ClientOptions client_options() {
    ClientOptions c;
    c.connect_timeout = std::chrono::seconds(10);
    c.read_timeout = std::chrono::seconds(60);
    c.user_agent = std::string("layerswarm-cli/") + LAYERSWARM_VERSION;
    return c;
  }
  std::string target(const std::string& kind, const std::string& reference) const {
    std::string t = "/v2/" + ref_.name + "/" + kind + "/" + reference;
    if (!ref_.registry.empty()) t += "?ns=" + ref_.registry;
    return t;
  }
  Task<Result<std::unique_ptr<ClientResponse>>> get(const std::string& target_path,
                                                    const char* accept);
  Task<Result<Manifest>> manifest(const std::string& reference);
  Task<Status> blob(const Digest& digest, std::uint64_t size, const Sink& sink);
  Task<Status> write_oci(const Manifest& m, const json& doc);
  Task<Status> write_docker(const Manifest& m, const json& doc);

  HttpClient client_;
  const ExportOptions& o_;
  ImageReference ref_;
};

Task<Result<std::unique_ptr<ClientResponse>>> Exporter::get(const std::string& target_path,
                                                            const char* accept) {
  ClientRequest request;
  request.url = o_.server;
  request.url.target = target_path;
  if (!o_.token.empty()) request.headers.add("Authorization", "Bearer " + o_.token);
  if (accept) request.headers.add("Accept", accept);
  auto response = co_await client_.send(std::move(request));
  if (!response) co_return response.error();
  if ((*response)->status != 200) {
    auto body = co_await (*response)->read_all(4096);
    co_return Error(Errc::kUpstreamUnavailable, "GET " + target_path + ": the server answered " +
                                                    std::to_string((*response)->status) + ": " +
                                                    (body ? body->substr(0, 300) : std::string()));
  }
  co_return std::move(*response);
}

Task<Result<Manifest>> Exporter::manifest(const std::string& reference) {
  auto response = co_await get(target("manifests", reference), kAccept);
  if (!response) co_return response.error();
  std::string media_type((*response)->headers.get("Content-Type").value_or(""));
  auto body = co_await (*response)->read_all(kMaxManifest);
  if (!body) co_return body.error();
  const Digest digest = Digest::sha256_of(*body);
  if (reference.starts_with("sha256:") && digest.str() != reference) {
    co_return Error(Errc::kDigestMismatch, "manifest " + reference + " does not verify");
  }
  const json doc = json::parse(*body, nullptr, false);
  if (!doc.is_object()) co_return Error(Errc::kManifestInvalid, "the manifest is not JSON");
  if (doc.contains("mediaType") && doc["mediaType"].is_string()) {
    media_type = doc["mediaType"].get<std::string>();
  }
  co_return Manifest{media_type, std::move(*body), digest};
}

Task<Status> Exporter::blob(const Digest& digest, std::uint64_t size, const Sink& sink) {
  auto response = co_await get(target("blobs", digest.str()), nullptr);
  if (!response) co_return response.error();
  Hasher hasher(digest.algorithm());
  std::vector<char> buf(1 << 20);
  std::uint64_t got = 0;
  for (int i = 0; i < (1 << 30) && !(*response)->body_done(); ++i) {
    auto n = co_await (*response)->read_some(buf.data(), buf.size());
    if (!n) co_return n.error();
    if (*n == 0) break;
    got += *n;
    if (got > size) break;
    hasher.update(buf.data(), *n);
    if (auto s = sink(buf.data(), *n); !s) co_return s;
  }
  if (got != size || hasher.finish() != digest) {
    co_return Error(Errc::kDigestMismatch, "blob " + digest.str() + " did not verify (" +
                                               std::to_string(got) + " of " + std::to_string(size) +
                                               " bytes)");
  }
  co_return Status();
}

Task<Status> Exporter::run() {
  auto parsed = parse_image_reference(o_.image);
  if (!parsed) co_return parsed.error();
  ref_ = *parsed;
  auto top = co_await manifest(ref_.digest ? ref_.digest->str() : ref_.tag);
  if (!top) co_return top.error();
  Manifest m = std::move(*top);
  json doc = json::parse(m.body);
  if (is_index(m.media_type)) {
    const std::string want = o_.platform.empty() ? "linux/amd64" : o_.platform;
    std::string chosen;
    for (const auto& d : doc.value("manifests", json::array())) {
      const auto p = d.value("platform", json::object());
      std::string platform = p.value("os", "") + "/" + p.value("architecture", "");
      if (!p.value("variant", "").empty()) platform += "/" + p.value("variant", "");
      if (platform == want || (want.find('/', want.find('/') + 1) == std::string::npos &&
                               platform.starts_with(want + "/"))) {
        chosen = d.value("digest", "");
        break;
      }
    }
    if (chosen.empty())
      co_return Error(Errc::kManifestUnknown, "no " + want + " image in the index");
    auto child = co_await manifest(chosen);
    if (!child) co_return child.error();
    m = std::move(*child);
    doc = json::parse(m.body);
  }
  if (!doc.contains("config") || !doc.contains("layers") || !doc["layers"].is_array()) {
    co_return Error(Errc::kManifestInvalid, "not an image manifest (" + m.media_type + ")");
  }
  if (o_.format == "oci") {
    Status written = co_await write_oci(m, doc);
    co_return written;
  }
  Status written = co_await write_docker(m, doc);
  co_return written;
}

// An OCI image layout: oci-layout, index.json naming the image (its tag as
// org.opencontainers.image.ref.name), blobs/sha256/<hex> for the manifest, config and layers.
Task<Status> Exporter::write_oci(const Manifest& m, const json& doc) {
  std::error_code ec;
  if (fs::exists(o_.output, ec) && !fs::is_empty(o_.output, ec)) {
    co_return Error(Errc::kConfigInvalid, o_.output + " exists and is not empty");
  }
  const std::string blobs = o_.output + "/blobs/sha256";
  fs::create_directories(blobs, ec);
  if (ec) co_return Error(Errc::kStorage, "cannot create " + blobs + ": " + ec.message());
  auto write_file = [](const std::string& path, std::string_view data) -> Status {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.close();
    return f ? Status() : Status(Error(Errc::kStorage, "cannot write " + path));
  };
  std::vector<json> descriptors = {doc["config"]};
  for (const auto& l : doc["layers"]) descriptors.push_back(l);
  for (const auto& d : descriptors) {
    auto digest = Digest::parse(d.value("digest", ""));
    if (!digest) co_return Error(Errc::kManifestInvalid, "a bad digest in the manifest");
    const std::string path = blobs + "/" + std::string(digest->hex());
    std::ofstream file(path + ".part", std::ios::binary | std::ios::trunc);
    const Sink sink = [&file](const char* data, std::size_t n) -> Status {
      file.write(data, static_cast<std::streamsize>(n));
      return file ? Status() : Status(Error(Errc::kStorage, "writing a blob"));
    };
    const std::uint64_t size = d.value("size", std::uint64_t{0});
    Status fetched = co_await blob(*digest, size, sink);
    file.close();
    if (!fetched) co_return fetched;
    fs::rename(path + ".part", path, ec);
    if (ec) co_return Error(Errc::kStorage, "cannot rename " + path + ": " + ec.message());
  }
  if (auto s = write_file(blobs + "/" + std::string(m.digest.hex()), m.body); !s) co_return s;
  json descriptor = {
      {"mediaType", m.media_type}, {"digest", m.digest.str()}, {"size", m.body.size()}};
  // The tag for skopeo and others; the whole reference as containerd names images (what
  // `layerswarm-agent import` files the image under).
  descriptor["annotations"] = {{"io.containerd.image.name", o_.image}};
  if (!ref_.tag.empty() && !ref_.digest) {
    descriptor["annotations"]["org.opencontainers.image.ref.name"] = ref_.tag;
  }
  const json index = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.index.v1+json"},
                      {"manifests", json::array({descriptor})}};
  if (auto s = write_file(o_.output + "/index.json", index.dump()); !s) co_return s;
  co_return write_file(o_.output + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
}

Task<Status> Exporter::write_docker(const Manifest& m, const json& doc) {
  (void)m;
  const std::string partial = o_.output + ".part";
  DockerArchive archive;
  if (auto s = archive.open(partial); !s) co_return s;
  // The config first (docker load reads manifest.json, then what it names).
  auto config_digest = Digest::parse(doc["config"].value("digest", ""));
  if (!config_digest) co_return Error(Errc::kManifestInvalid, "a bad config digest");
  const std::string config_name = std::string(config_digest->hex()) + ".json";
  const Sink write = [&archive](const char* data, std::size_t n) { return archive.write(data, n); };
  const std::uint64_t config_size = doc["config"].value("size", std::uint64_t{0});
  if (auto s = archive.begin(config_name, config_size); !s) co_return s;
  Status config = co_await blob(*config_digest, config_size, write);
  if (!config) co_return config;
  json layers = json::array();
  for (const auto& l : doc["layers"]) {
    auto digest = Digest::parse(l.value("digest", ""));
    if (!digest) co_return Error(Errc::kManifestInvalid, "a bad layer digest");
    const std::string name = std::string(digest->hex()) + "/layer.tar";
    const std::uint64_t size = l.value("size", std::uint64_t{0});
    if (auto s = archive.begin(name, size); !s) co_return s;
    Status layer = co_await blob(*digest, size, write);
    if (!layer) co_return layer;
    layers.push_back(name);
  }
  // RepoTags as docker names images: Docker Hub's without its registry and library/ prefix.
  json tags = json::array();
  if (!ref_.digest) {
    std::string name = ref_.name;
    const bool hub = ref_.registry.empty() || ref_.registry == "docker.io";
    if (hub && name.starts_with("library/")) name = name.substr(8);
    tags.push_back((hub ? "" : ref_.registry + "/") + name + ":" + ref_.tag);
  }
  const json manifest =
      json::array({{{"Config", config_name}, {"RepoTags", tags}, {"Layers", layers}}});
  if (auto s = archive.add("manifest.json", manifest.dump()); !s) co_return s;
  if (auto s = archive.close(); !s) co_return s;
  std::error_code ec;
  fs::rename(partial, o_.output, ec);
  if (ec) co_return Error(Errc::kStorage, "cannot rename " + partial + ": " + ec.message());
  co_return Status();
}

Task<void> run_into(Exporter& exporter, Status& result) { result = co_await exporter.run(); }

}  // namespace

int run_export(const ExportOptions& options) {
  if (options.format != "docker" && options.format != "oci") {
    std::fprintf(stderr, "layerswarm export: --format is docker or oci\n");
    return 2;
  }
  asio::io_context ioc(1);
  Exporter exporter(ioc.get_executor(), options);
  Status result = Error(Errc::kInternal, "did not run");
  asio::co_spawn(ioc, run_into(exporter, result), asio::detached);
  ioc.run();
  if (!result) {
    std::error_code ec;
    fs::remove_all(options.format == "oci" ? options.output : options.output + ".part", ec);
    std::fprintf(stderr, "layerswarm export: %s\n", result.error().what().c_str());
    return result.error().code == make_error_code(Errc::kNameInvalid) ? 2 : 1;
  }
  std::printf("exported %s to %s (%s)\n", options.image.c_str(), options.output.c_str(),
              options.format == "oci" ? "an OCI image layout" : "a docker load archive");
  return 0;
}

}  // namespace layerswarm::cli
