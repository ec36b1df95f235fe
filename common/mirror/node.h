// A mirror node: what the agent and the supernode both run. Owns the store, the blob-work
// thread pool, the upstream registries (and, for an agent with a supernode, the supernode as
// first source), the single-flight fetcher, the manifest and blob services, the OCI API handler,
// the HTTP listeners and the TTL sweep; shuts down by draining.
//
// Threading: create, start and shut down on the thread that runs `ioc` (one thread).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/async.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "common/mirror/blob_source.h"
#include "common/mirror/counters.h"
#include "common/mirror/options.h"
#include "common/mirror/upstreams.h"

namespace boost::asio {
class io_context;
}

namespace layerswarm {
class Store;
}

namespace layerswarm::mirror {

class BlobService;
class ImageFetcher;

class BlobFetcher;
class ManifestService;

struct NodeOptions {
  std::string data_dir;
  MirrorOptions mirror;
  std::string listen;
  std::string tls_listen;  // empty: none
  // /metrics, /healthz and /readyz on a listener of their own (empty: none).
  std::string metrics_listen;
  std::string role = "agent";  // for GET /api/v1/status
  TlsFiles tls;
  std::chrono::milliseconds drain_timeout{10'000};
  ServerLimits limits;
  // An agent's supernode: manifests and blobs are asked from it first.
  std::optional<Via> via;
  // With `via`: ask the registry itself when the supernode cannot answer.
  bool direct_fallback = true;
  // A supernode: a client credential its agents forward (kForwardedAuthorization) is checked
  // with the registry before anything is served for that request.
  bool honour_forwarded_credentials = false;
  // The cache's administration API (common/mirror/cache_admin.h) is open to loopback clients
  // and to holders of this token (the cluster token; empty: loopback only).
  std::string admin_token;
};

class MirrorNode {
 public:
  // Opens the store and binds the listeners. Errors: kConfigInvalid, kStorage, socket errors.
  // `first`: a source asked before the others (the agent's swarm); it must outlive the node.
  static Result<std::unique_ptr<MirrorNode>> create(const NodeOptions& options,
                                                    asio::io_context& ioc, const Clock& clock,
                                                    BlobSource* first = nullptr);
  ~MirrorNode();

  // Requests go to `front` instead of the OCI API handler (which `front` may pass them on to).
  // Call before start(); `front` must outlive the node.
  void set_front(HttpHandler* front);
  // The OCI Distribution API handler.
  HttpHandler& mirror();

  // The bound listener addresses, plain first.
  const std::vector<std::string>& endpoints() const;
  // The metrics listener's bound address, or "".
  const std::string& metrics_endpoint() const;
  void start();
  // Stops accepting, lets requests in progress finish (drain_timeout), closes the rest.
  Task<void> shutdown();
  // Ends a shutdown() in progress now.
  void cut_shutdown();

  const Counters& counters() const;
  Store& store();
  asio::thread_pool& pool();
  BlobFetcher& fetcher();
  BlobService& blobs();
  // Resolving images and fetching their blobs into the cache (pins, preheat).
  ImageFetcher& images();
  // The cache's budget, or its filesystem's size without one (CacheKeeper::capacity).
  std::uint64_t cache_capacity() const;
  // The canonical blob a request names: `registry` as requested ("" for the default),
  // `name` as requested. Errors: those of Upstreams::resolve.
  Result<BlobLocator> locate(std::string_view registry, std::string_view name,
                             const Digest& digest);

  struct Impl;

 private:
  explicit MirrorNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace layerswarm::mirror
