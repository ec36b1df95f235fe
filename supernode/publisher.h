// Publishes blobs to the swarm as chunk torrents (docs/architecture.md "The swarm"): a blob is
// cut into fixed-size chunks, each a v2 torrent of its own, made (and seeded by the supernode)
// as soon as the supernode holds that chunk, so agents download chunk 1 from the swarm while
// the supernode still fetches chunk 2 from the upstream.
//
// Both need the cluster token; both wait (long-poll, at most `wait`) for what they ask for:
//   GET /swarm/v1/<repo>/blobs/<digest>?ns=<registry>             the blob's layout
//   GET /swarm/v1/<repo>/blobs/<digest>/chunks/<k>?ns=<registry>  chunk k's metainfo
//   200: headers X-Layerswarm-Blob-Size, -Chunk-Size, -Chunks, -Piece-Size and -Seed-Port
//        (the supernode's BitTorrent port); for a chunk, its metainfo as the body
//        (application/x-bittorrent).
//   202: not ready yet; X-Layerswarm-Available: bytes the supernode holds so far.
//   404: no such blob upstream, or k past the last chunk; other errors as the blob GET's.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/http_server.h"
#include "common/log.h"
#include "common/mirror/blob_source.h"

namespace layerswarm::mirror {
class MirrorNode;
}
namespace layerswarm::p2p {
class Swarm;
}

namespace layerswarm::supernode {

struct PublisherOptions {
  std::uint64_t chunk_size = 4 << 20;
  int piece_size = 256 << 10;
  std::chrono::milliseconds wait{5'000};  // longest long-poll for a chunk not made yet
  bool first_seed = true;                 // Swarm::Add::first_seed
};

class Publisher {
 public:
  // Starts a check, every minute, that withdraws blobs the cache no longer holds (TTL sweep).
  Publisher(mirror::MirrorNode& node, p2p::Swarm& swarm, PublisherOptions options,
            asio::any_io_executor executor);
  ~Publisher();

  std::size_t published_blobs() const { return blobs_.size(); }

  static bool handles(std::string_view target);
  // Answers a /swarm/v1 request (the caller checked the token).
  Task<void> serve(HttpRequest request, ResponseWriter& out, RequestLog& log);

  struct Blob;

 private:
  Task<void> produce(std::shared_ptr<Blob> blob, mirror::BlobLocator locator);
  Task<Status> publish_chunks(std::shared_ptr<Blob> blob, int fd, std::uint64_t size);
  void withdraw_uncached();

  mirror::MirrorNode& node_;
  p2p::Swarm& swarm_;
  PublisherOptions options_;
  std::map<std::string, std::shared_ptr<Blob>> blobs_;  // by digest
  std::shared_ptr<asio::steady_timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::supernode
