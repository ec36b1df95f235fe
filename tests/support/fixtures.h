// Real processes for integration tests, all on 127.0.0.1 with ephemeral ports:
// docker-registry as the upstream (anonymous, htpasswd or token auth), the token server
// (tests/tools/token_server.py), the layerswarm-agent binary, skopeo, and generated images
// (scripts/mkimage.py).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/http.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace layerswarm::test {

// Paths baked in by CMake.
std::string agent_binary();
std::string supernode_binary();
std::string cli_binary();
// The agent built with test hooks (LAYERSWARM_TESTING_CORRUPT_UPLOADS=1: uploads corrupt pieces;
// LAYERSWARM_TESTING_NO_DIAL_ROUNDS=1: dials only on a torrent's one tracker reply).
std::string testhooks_agent_binary();
std::string source_dir();

class TokenServer {
 public:
  // Issues RS256 JWTs for `user`/`password` (generates its own key and certificate).
  // `extra`: token_server.py flags (--anonymous, --expired-first N).
  TokenServer(const TempDir& dir, std::string user, std::string password,
              const std::vector<std::string>& extra = {});
  std::string realm() const { return "http://" + address_ + "/token"; }
  const std::string& cert_file() const { return cert_; }
  int token_requests() const;
  std::string log() const { return process_->log(); }
  const std::string& log_file() const { return process_->log_file(); }

 private:
  std::string address_;
  std::string cert_;
  std::unique_ptr<Process> process_;
};

struct RegistryAuth {
  enum class Kind { kNone, kHtpasswd, kToken } kind = Kind::kNone;
  std::string user = "tester";
  std::string password = "s3cret-pass";
  const TokenServer* token_server = nullptr;  // for kToken
  // Serve https with this certificate and key (PEM) instead of http.
  std::string tls_cert;
  std::string tls_key;
};

// docker-registry serving from a directory of its own.
class Registry {
 public:
  explicit Registry(const TempDir& dir, RegistryAuth auth = {},
                    const std::string& name = "upstream");
  const std::string& address() const { return address_; }
  std::string url() const { return (auth_.tls_cert.empty() ? "http://" : "https://") + address_; }
  const std::string& storage() const { return storage_; }
  // skopeo credentials for this registry, if it needs any.
  std::vector<std::string> dest_creds() const;
  // Requests in the access log with `method` on exactly `path`
  // (e.g. "/v2/demo/app/blobs/sha256:..").
  int requests(const std::string& method, const std::string& path) const;
  // Requests the agent (User-Agent layerswarm/...) made with `method` on paths starting with
  // `prefix`.
  int agent_requests(const std::string& method, const std::string& prefix) const;
  std::string log() const { return process_->log(); }
  void stop() { process_->terminate(); }
  // The file that holds a blob's bytes in the registry's storage.
  std::string blob_data_path(const std::string& digest) const;

 private:
  RegistryAuth auth_;
  std::string address_;
  std::string storage_;
  std::unique_ptr<Process> process_;
};

// tests/tools/upstream_front.py in front of `registry`, with fault flags (--fail-first N,
// --throttle-first N, --fail-after N, --basic U:P, --redirect-blobs, --ratelimit R/L).
class UpstreamFront {
 public:
  UpstreamFront(const TempDir& dir, const Registry& registry, const std::vector<std::string>& flags,
                const std::string& name = "front");
  const std::string& address() const { return address_; }
  std::string url() const { return "http://" + address_; }
  // Request lines logged with every needle ("front GET", "auth=no", ...).
  int lines(const std::vector<std::string>& needles) const;
  std::string log() const { return process_->log(); }

 private:
  std::string address_;
  std::unique_ptr<Process> process_;
};

// An agent configuration whose default upstream is `registry`, listed under its host:port with
// its URL and `entry` (more keys, starting with ", "), and `top` (more top-level keys, ending
// with ", ").
std::string registries_config(const Registry& registry, const std::string& entry,
                              const std::string& top = "");

// Makes a self-signed certificate for 127.0.0.1 (it is its own CA). Returns {cert, key}.
std::pair<std::string, std::string> make_certificate(const TempDir& dir, const std::string& name);

// The layerswarm-agent binary (or `binary`: the supernode) with
// `--listen 127.0.0.1:0 --data-dir <dir>/<name>-data --p2p-listen 127.0.0.1:0`.
class Agent {
 public:
  Agent(const TempDir& dir, std::vector<std::string> args, const std::string& config_json = "",
        const std::string& name = "agent", const std::string& binary = agent_binary());
  ~Agent();
  const std::string& address() const { return address_; }
  // The TLS listener's address, when tls.listen is configured.
  const std::string& tls_address() const { return tls_address_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string log() const;
  // SIGTERM; the exit status, nullopt when it had to be killed.
  std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Starts again with the same arguments and data (a new port).
  void start();
  Process& process() { return *process_; }
  bool blob_file_exists(const std::string& digest) const;
  // Log lines mentioning every needle.
  int log_lines(const std::vector<std::string>& needles) const;

 private:
  std::vector<std::string> argv_;
  std::string log_file_;
  std::string data_dir_;
  std::string address_;
  std::string tls_address_;
  std::unique_ptr<Process> process_;
};

struct Image {
  std::string layout;      // OCI layout directory
  nlohmann::json summary;  // mkimage.py's output: digest, mediaType, blobs[]
  std::string digest() const { return summary["digest"]; }
  std::vector<std::string> blob_digests() const;
};

// Runs scripts/mkimage.py into <dir>/<name> with extra arguments (--layer 1M, --platform ...).
Image make_image(const TempDir& dir, const std::string& name, const std::vector<std::string>& args);

// Runs skopeo (--insecure-policy, plain http) with `args`; returns its exit status.
int skopeo(const TempDir& dir, const std::vector<std::string>& args);
// skopeo copy [--all] [--format v2s2] oci:<layout>:<tag> docker://<registry>/<ref>
void push_image(const TempDir& dir, const Image& image, const Registry& registry,
                const std::string& ref, const std::vector<std::string>& extra = {});
// Pulls docker://<host>/<ref> into <dir>/<out> as a dir: copy (with --all).
int pull_to_dir(const TempDir& dir, const std::string& host, const std::string& ref,
                const std::string& out, const std::vector<std::string>& extra = {});

// Uploads `bytes` as a blob of `repo` (monolithic upload); returns its digest (sha256, or
// sha512 when asked).
std::string push_blob(const Registry& registry, const std::string& repo, const std::string& bytes,
                      bool sha512 = false);
std::string random_bytes(std::size_t n, unsigned seed);

// Whether two directory trees hold the same files with the same bytes.
bool same_tree(const std::string& a, const std::string& b, std::string* why = nullptr);

}  // namespace layerswarm::test
