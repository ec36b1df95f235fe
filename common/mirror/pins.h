// Pinned images (cache.pins; docs/architecture.md "The cache's lifecycle"): fetched into the
// cache at start and again every `refresh` (tags move), never evicted and their tags never
// swept, so an edge node keeps pulling them while offline. A pin set larger than the disk
// budget is a configuration error (reported through `fatal` after the first resolution).
//
// The pinner resolves references through the node's own manifest service and downloads
// blobs through its single-flight fetcher (the swarm, the supernode, the registry), with the
// node's credentials.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/async.h"
#include "common/mirror/blob_fetch.h"
#include "common/mirror/manifest_service.h"
#include "common/mirror/options.h"
#include "common/mirror/upstreams.h"
#include "common/reference.h"
#include "common/store.h"

namespace layerswarm::mirror {

struct PinnerOptions {
  std::vector<PinSpec> pins;
  std::chrono::milliseconds refresh{std::chrono::minutes(10)};
  std::optional<std::uint64_t> budget;  // bytes (CacheKeeper::budget)
  // Pins added at run time (layerswarm cache pin) are kept here across restarts, as a JSON
  // list in cache.pins' form; empty: no run-time pins.
  std::string runtime_file;
};

// What an image reference resolves to: its manifests and blobs.
struct ImageContents {
  std::vector<Digest> digests;                               // manifests and blobs
  std::vector<std::string> tags;                             // "<registry>|<repository>|<tag>"
  std::vector<std::pair<BlobLocator, std::uint64_t>> blobs;  // with their sizes
  std::set<std::string> seen;
  std::uint64_t blob_bytes = 0;
};

// Resolves images through the node's manifest service and brings their blobs into the cache
// through its fetcher: what pins and preheats use.
class ImageFetcher {
 public:
  ImageFetcher(asio::any_io_executor executor, Upstreams& upstreams, ManifestService& manifests,
               BlobFetcher& fetcher, Store& store);
  // Adds `image`'s manifests (an index's children for the platforms asked) and blobs to `out`.
  // Errors: the manifest service's, kManifestInvalid, kManifestUnknown (no platform matched).
  Task<Status> resolve(const PinSpec& image, ImageContents& out);
  // The blob is in the cache afterwards (downloaded through the node's sources when absent).
  // Errors: the download's, kTimeout (no progress for 2 minutes), kStorage (no room).
  Task<Status> ensure(const BlobLocator& blob);
  // The store's key of a tag reference ("<registry>|<repository>|<tag>"); nullopt for a
  // reference by digest or a registry that cannot be resolved.
  std::optional<std::string> tag_key(const ImageReference& image);

 private:
  Task<Status> resolve_manifest(const UpstreamTarget& target, const std::string& repository,
                                const ManifestAnswer& answer, const PinSpec& pin,
                                ImageContents& found, int depth);

  asio::any_io_executor executor_;
  Upstreams& upstreams_;
  ManifestService& manifests_;
  BlobFetcher& fetcher_;
  Store& store_;
};

// The run-time pins file (PinnerOptions::runtime_file, also written by layerswarm-agent
// import --pin): a JSON list in cache.pins' form. An absent file holds no pins.
// Errors: kConfigInvalid (read), kStorage (write).
Result<std::vector<PinSpec>> read_pin_file(const std::string& file);
Status write_pin_file(const std::string& file, const std::vector<PinSpec>& pins);

class Pinner {
 public:
  Pinner(asio::any_io_executor executor, ImageFetcher& images, Store& store, PinnerOptions options,
         std::function<void(const Error&)> fatal);
  ~Pinner();
  void start();
  void stop();

  // What the last pass pinned.
  std::uint64_t pinned_bytes() const { return pinned_bytes_; }

  // Run-time pins (layerswarm cache pin/unpin; docs/operations.md "Cache"): saved in
  // runtime_file, resolved and fetched by a pass that starts at once. add: an image already
  // pinned is not added twice. Errors: kStorage (the file cannot be written). remove: kNotFound
  // (not pinned), kDenied (pinned by cache.pins: the configuration owns it).
  Status add(PinSpec pin);
  Status remove(const ImageReference& image);
  struct Listed {
    std::string image;
    std::vector<std::string> platforms;
    bool configured = false;  // from cache.pins (else added at run time)
  };
  std::vector<Listed> list() const;

 private:
  Task<void> loop();
  Task<Status> pass(bool first);
  std::vector<PinSpec> all() const;
  Status save() const;
  void load();
  void poke();  // a pass now

  asio::any_io_executor executor_;
  ImageFetcher& images_;
  Store& store_;
  PinnerOptions options_;
  std::function<void(const Error&)> fatal_;
  std::uint64_t pinned_bytes_ = 0;
  std::vector<PinSpec> runtime_;
  bool running_ = false;  // the loop is spawned
  bool dirty_ = false;    // pins changed during a pass: another pass follows at once
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<asio::steady_timer> timer_;
};

}  // namespace layerswarm::mirror
