#include "tests/support/fixtures.h"

#include <filesystem>

#include <random>
#include <regex>
#include <stdexcept>
#include "common/digest.h"

namespace layerswarm::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string agent_binary() { return LS_AGENT_BIN; }
std::string supernode_binary() { return LS_SUPERNODE_BIN; }
std::string cli_binary() { return LS_CLI_BIN; }
std::string testhooks_agent_binary() { return LS_TESTHOOKS_AGENT_BIN; }
std::string source_dir() { return LS_SOURCE_DIR; }

namespace {

// "... listening on 127.0.0.1:41234 ..." -> "127.0.0.1:41234"
std::string address_in(const std::string& line) {
  static const std::regex re(R"((127\.0\.0\.1:[0-9]+))");
  std::smatch m;
  if (!std::regex_search(line, m, re)) return "";
  return m[1];
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

}  // namespace

TokenServer::TokenServer(const TempDir& dir, std::string user, std::string password,
                         const std::vector<std::string>& extra) {
  cert_ = dir.file("token.crt");
  const std::string key = dir.file("token.key");
  check(run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                     "-out", cert_, "-days", "2", "-subj", "/CN=layerswarm-test-token-issuer"},
                    dir.file("openssl.log")) == 0,
        "openssl could not make the token certificate");
  const std::string log = dir.file("token-server.log");
  std::vector<std::string> argv{"python3",    source_dir() + "/tests/tools/token_server.py",
                                "--cert",     cert_,
                                "--key",      key,
                                "--user",     user,
                                "--password", password};
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = std::make_unique<Process>(argv, log);
  address_ = address_in(wait_for_line(log, "listening on"));
  check(!address_.empty(), "token server did not start: " + read_file(log));
}

int TokenServer::token_requests() const { return count_lines(process_->log(), {"token issued"}); }

Registry::Registry(const TempDir& dir, RegistryAuth auth, const std::string& name)
    : auth_(std::move(auth)) {
  const std::string base = dir.file(name);
  fs::create_directories(base);
  storage_ = base + "/data";
  std::string cfg =
      "version: 0.1\n"
      "log:\n  level: info\n  accesslog:\n    disabled: false\n"
      "storage:\n  filesystem:\n    rootdirectory: " +
      storage_ +
      "\n"
      "  delete:\n    enabled: true\n"
      "  maintenance:\n    uploadpurging:\n      enabled: false\n"
      "http:\n  addr: 127.0.0.1:0\n  secret: layerswarm-test-secret\n";
  if (!auth_.tls_cert.empty()) {
    cfg += "  tls:\n    certificate: " + auth_.tls_cert + "\n    key: " + auth_.tls_key + "\n";
  }
  if (auth_.kind == RegistryAuth::Kind::kHtpasswd) {
    const std::string htpasswd = base + "/htpasswd";
    check(run_command({"htpasswd", "-Bbc", htpasswd, auth_.user, auth_.password},
                      base + "/htpasswd.log") == 0,
          "htpasswd failed");
    cfg += "auth:\n  htpasswd:\n    realm: layerswarm-test\n    path: " + htpasswd + "\n";
  } else if (auth_.kind == RegistryAuth::Kind::kToken) {
    cfg += "auth:\n  token:\n    realm: " + auth_.token_server->realm() +
           "\n    service: layerswarm-test-registry\n    issuer: layerswarm-test-issuer\n"
           "    rootcertbundle: " +
           auth_.token_server->cert_file() + "\n";
  }
  write_file(base + "/config.yml", cfg);
  const std::string log = base + "/registry.log";
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"docker-registry", "serve", base + "/config.yml"}, log);
  address_ = address_in(wait_for_line(log, "listening on"));
  check(!address_.empty(), "docker-registry did not start: " + read_file(log));
}

std::vector<std::string> Registry::dest_creds() const {
  if (auth_.kind == RegistryAuth::Kind::kNone) return {};
  return {"--dest-creds", auth_.user + ":" + auth_.password};
}

int Registry::requests(const std::string& method, const std::string& path) const {
  return count_lines(process_->log(), {"\"" + method + " " + path + " HTTP/1.1\""});
}

int Registry::agent_requests(const std::string& method, const std::string& prefix) const {
  return count_lines(process_->log(), {"\"" + method + " " + prefix, "\"layerswarm/"});
}

std::string Registry::blob_data_path(const std::string& digest) const {
  const std::string hex = digest.substr(digest.find(':') + 1);
  return storage_ + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
}

UpstreamFront::UpstreamFront(const TempDir& dir, const Registry& registry,
                             const std::vector<std::string>& flags, const std::string& name) {
  std::vector<std::string> argv = {"python3", source_dir() + "/tests/tools/upstream_front.py",
                                   "--registry", registry.address()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const std::string log = dir.file(name + ".log");
  process_ = std::make_unique<Process>(argv, log);
  address_ = address_in(wait_for_line(log, "listening on"));
  check(!address_.empty(), "upstream front did not start: " + read_file(log));
}

int UpstreamFront::lines(const std::vector<std::string>& needles) const {
  return count_lines(process_->log(), needles);
}

std::string registries_config(const Registry& registry, const std::string& entry,
                              const std::string& top) {
  return R"({"upstream": ")" + registry.address() + R"(", )" + top + R"("registries": {")" +
         registry.address() + R"(": {"url": ")" + registry.url() + "\"" + entry + "}}}";
}

std::pair<std::string, std::string> make_certificate(const TempDir& dir, const std::string& name) {
  const std::string cert = dir.file(name + ".crt");
  const std::string key = dir.file(name + ".key");
  check(run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                     "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                     "subjectAltName=IP:127.0.0.1"},
                    dir.file(name + "-openssl.log")) == 0,
        "openssl could not make a certificate");
  return {cert, key};
}

Agent::Agent(const TempDir& dir, std::vector<std::string> args, const std::string& config_json,
             const std::string& name, const std::string& binary) {
  data_dir_ = dir.file(name + "-data");
  log_file_ = dir.file(name + ".log");
  argv_ = {binary,    "--listen",     "127.0.0.1:0", "--data-dir",
           data_dir_, "--p2p-listen", "127.0.0.1:0"};
  if (!config_json.empty()) {
    write_file(dir.file(name + ".json"), config_json);
    argv_.push_back("--config");
    argv_.push_back(dir.file(name + ".json"));
  }
  argv_.insert(argv_.end(), args.begin(), args.end());
  start();
}

Agent::~Agent() {
  if (process_) process_->terminate(5s);
}

void Agent::start() {
  const int before = count_lines(read_file(log_file_), {"listening on http://"});
  process_ = std::make_unique<Process>(argv_, log_file_);
  std::string text;
  wait_until(
      [&] {
        text = read_file(log_file_);
        return count_lines(text, {"listening on http://"}) > before || !process_->running();
      },
      20s);
  const auto plain = text.rfind("listening on http://");
  check(plain != std::string::npos && process_->running(), "agent did not start: " + text);
  address_ = address_in(text.substr(plain, text.find('\n', plain) - plain));
  const auto tls = text.rfind("listening on https://");
  tls_address_ = tls == std::string::npos || tls < plain ? "" : address_in(text.substr(tls));
}

std::string Agent::log() const { return read_file(log_file_); }

std::optional<int> Agent::stop(std::chrono::milliseconds timeout) {
  return process_->terminate(timeout);
}

bool Agent::blob_file_exists(const std::string& digest) const {
  const std::string hex = digest.substr(digest.find(':') + 1);
  return fs::exists(data_dir_ + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex);
}

int Agent::log_lines(const std::vector<std::string>& needles) const {
  return count_lines(log(), needles);
}

std::vector<std::string> Image::blob_digests() const {
  std::vector<std::string> out;
  for (const auto& b : summary["blobs"]) out.push_back(b["digest"]);
  return out;
}

Image make_image(const TempDir& dir, const std::string& name,
                 const std::vector<std::string>& args) {
  Image image;
  image.layout = dir.file(name);
  std::vector<std::string> argv = {"python3", source_dir() + "/scripts/mkimage.py", image.layout,
                                   "--label", name};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out = dir.file(name + ".json");
  check(run_command(argv, out) == 0, "mkimage.py failed: " + read_file(out));
  image.summary = nlohmann::json::parse(read_file(out));
  return image;
}

int skopeo(const TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"skopeo", "--insecure-policy"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, dir.file("skopeo.log"));
}

void push_image(const TempDir& dir, const Image& image, const Registry& registry,
                const std::string& ref, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"copy", "--dest-tls-verify=false"};
  for (const auto& c : registry.dest_creds()) args.push_back(c);
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("oci:" + image.layout + ":" + image.summary["tag"].get<std::string>());
  args.push_back("docker://" + registry.address() + "/" + ref);
  check(skopeo(dir, args) == 0, "skopeo push failed: " + read_file(dir.file("skopeo.log")));
}

int pull_to_dir(const TempDir& dir, const std::string& host, const std::string& ref,
                const std::string& out, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"copy", "--all", "--src-tls-verify=false"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("docker://" + host + "/" + ref);
  args.push_back("dir:" + dir.file(out));
  return skopeo(dir, args);
}

std::string push_blob(const Registry& registry, const std::string& repo, const std::string& bytes,
                      bool sha512) {
  std::string digest = "sha256:" + sha256_hex(bytes);
  if (sha512) {
    layerswarm::Hasher h(layerswarm::Digest::Algorithm::kSha512);
    h.update(bytes.data(), bytes.size());
    digest = h.finish().str();
  }
  auto start = http_request(registry.address(), "POST", "/v2/" + repo + "/blobs/uploads/");
  check(start.status == 202, "blob upload start: " + std::to_string(start.status));
  std::string location = start.header("location");
  if (auto p = location.find("/v2/"); p != std::string::npos) location = location.substr(p);
  location +=
      (location.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
  auto put = http_request(registry.address(), "PUT", location,
                          {{"Content-Type", "application/octet-stream"}}, bytes);
  check(put.status == 201, "blob upload: " + std::to_string(put.status) + " " + put.body);
  return digest;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

bool same_tree(const std::string& a, const std::string& b, std::string* why) {
  auto files = [](const std::string& root) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto fa = files(a);
  const auto fb = files(b);
  if (fa != fb) {
    if (why) *why = "different file sets";
    return false;
  }
  for (const auto& f : fa) {
    if (read_file(a + "/" + f) != read_file(b + "/" + f)) {
      if (why) *why = "content differs: " + f;
      return false;
    }
  }
  return !fa.empty();
}

}  // namespace layerswarm::test
