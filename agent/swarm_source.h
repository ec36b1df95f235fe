// The agent's first blob source: the site's swarm (docs/architecture.md "The swarm"). The
// supernode publishes a blob as chunk torrents, each as soon as it holds that chunk; the agent
// adds them one by one, libtorrent writes verified pieces straight into the download's file
// (in place), and the stream hands the fetcher the bytes in order as the contiguous verified
// prefix grows, optionally with top piece priority just ahead of it (swarm.priority_window). The
// fetcher still checks the whole blob's digest; once the blob is cached its torrents keep seeding,
// across restarts too.
//
// Hands over to the next source (the supernode over HTTP) when the supernode cannot publish
// the blob, when nothing arrives for `stall_timeout`, or on a torrent error; declines blobs
// smaller than `min_blob_size` (a torrent's setup costs more than it saves).
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/http_client.h"
#include "common/mirror/blob_source.h"
#include "common/url.h"

namespace layerswarm {
class Store;
}
namespace layerswarm::p2p {
class Swarm;
}

namespace layerswarm::agent {

struct SwarmSourceOptions {
  Url supernode;
  std::string token;
  std::string zone;
  std::string ca_file;  // for an https supernode
  std::chrono::milliseconds stall_timeout{10'000};
  std::uint64_t min_blob_size = 1 << 20;
  int window = 0;  // pieces with top priority ahead of the reader (0: none)
};

class SwarmSource final : public mirror::BlobSource {
 public:
  SwarmSource(asio::any_io_executor executor, p2p::Swarm& swarm, SwarmSourceOptions options);
  ~SwarmSource() override;

  // Seeds the cached blobs recorded in `store` again and starts the periodic check that stops
  // seeding blobs the cache dropped. Call once, before the first open(); `store` must outlive
  // this source.
  void attach(Store& store);

  std::string_view name() const override { return "swarm"; }
  // Errors: kUnsupported (declined: small blob, offset not 0), kBlobUnknown (the supernode
  // says there is no such blob), other handover errors.
  Task<Result<std::unique_ptr<mirror::BlobStream>>> open(mirror::BlobLocator blob,
                                                         std::uint64_t offset, SteadyTime deadline,
                                                         int file) override;
  // Declines: the supernode over HTTP answers sizes.
  Task<Result<std::uint64_t>> stat(mirror::BlobLocator blob, SteadyTime deadline) override;

  // Blobs seeded from the cache, and their torrents.
  std::size_t seeding_blobs() const { return seeding_.size(); }

  struct Download;
  struct Layout;

 private:
  friend class SwarmStream;
  Task<Result<Layout>> fetch_layout(const mirror::BlobLocator& blob, SteadyTime deadline);
  Task<Result<std::string>> fetch_metainfo(const mirror::BlobLocator& blob, std::size_t k,
                                           std::shared_ptr<Download> download);
  Task<void> add_chunks(std::shared_ptr<Download> download, mirror::BlobLocator blob);
  Task<Result<std::string>> supernode_ip(SteadyTime deadline);
  void check_seeding();
  // A verified download's torrents go on seeding; its metainfo is recorded in the store.
  void keep_seeding(Download& download);
  std::vector<std::string> trackers() const;
  Url url_for(const mirror::BlobLocator& blob, std::string_view suffix) const;

  asio::any_io_executor executor_;
  p2p::Swarm& swarm_;
  SwarmSourceOptions options_;
  HttpClient client_;
  Store* store_ = nullptr;
  std::map<std::string, std::vector<std::uint64_t>> seeding_;  // digest -> torrent ids
  std::shared_ptr<asio::steady_timer> check_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::agent
