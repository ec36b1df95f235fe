// Publishes blobs to the swarm as chunk torrents (docs/architecture.md "The swarm"): a blob is
// cut into chunks (their size picked per blob from the upstream's rate: chunk_sizer.h), each a
// v2 torrent of its own, made (and seeded by the supernode)
// as soon as the supernode holds that chunk, so agents download chunk 1 from the swarm while
// the supernode still fetches chunk 2 from the upstream.
//
// The paths, headers and answers are common/swarm_protocol.h's. Layout and chunk requests wait
// (long-poll, at most `wait`) for what they ask for. A layout request is an agent starting to
// download the blob through the swarm: it is recorded in the demand feed, which agents holding
// the blob in their cache follow to start seeding it (lazy seeding).
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "common/http_server.h"
#include "common/log.h"
#include "common/mirror/blob_source.h"
#include "common/swarm_protocol.h"
#include "supernode/chunk_sizer.h"

namespace layerswarm::mirror {
class BlobFetch;
class MirrorNode;
}  // namespace layerswarm::mirror
namespace layerswarm::p2p {
class Swarm;
}

namespace layerswarm::supernode {

struct PublisherOptions {
  std::uint64_t chunk_size = 4 << 20;      // the largest chunk, and a cached blob's
  std::uint64_t min_chunk_size = 1 << 20;  // the smallest, for a slow upstream
  std::chrono::milliseconds chunk_time{3000};
  int piece_size = static_cast<int>(kDefaultPieceSize);
  std::chrono::milliseconds wait{5'000};  // longest long-poll for a chunk not made yet
  bool first_seed = true;                 // Swarm::Add::first_seed
  std::string root_cert;  // a closed site's CA (PEM): chunk torrents are SSL torrents
  // Longest long-poll of the demand feed: well under the agents' read timeout (15 s).
  std::chrono::milliseconds demand_wait{10'000};
  // A blob is listed at most once per this time (a rollout's nodes all ask at once); a request
  // within it is listed at its end (trailing edge), so no late request goes unlisted.
  std::chrono::milliseconds demand_repeat{2'000};
  // A published blob nobody asked for or downloaded from for this long is withdrawn.
  std::chrono::milliseconds idle{std::chrono::minutes(30)};
  // Demand older than this is not handed to an agent that starts following the feed.
  std::chrono::minutes demand_memory{10};
};

class Publisher {
 public:
  // Starts a check, every minute, that withdraws blobs the cache no longer holds (TTL sweep)
  // and blobs idle for `idle`.
  Publisher(mirror::MirrorNode& node, p2p::Swarm& swarm, PublisherOptions options,
            asio::any_io_executor executor);
  ~Publisher();

  std::size_t published_blobs() const { return blobs_.size(); }
  std::uint64_t demand_seq() const { return demand_seq_; }

  static bool handles(std::string_view target);
  // Answers a /swarm/v1 request (the caller checked the token).
  Task<void> serve(HttpRequest request, ResponseWriter& out, RequestLog& log);

  struct Blob;

 private:
  Task<void> produce(std::shared_ptr<Blob> blob, mirror::BlobLocator locator);
  // `chunk` 0: chosen by choose_chunk_size.
  Task<Status> publish_chunks(std::shared_ptr<Blob> blob, int fd, std::uint64_t size,
                              std::uint64_t chunk);
  // The chunk size for a blob of `size` bytes (docs/architecture.md "Chunks sized to the
  // link"): from the rate downloads run at lately, else from watching this one's first bytes.
  Task<std::uint64_t> choose_chunk_size(mirror::BlobFetch* fetch, std::uint64_t size);
  // Feeds the rate meter with what a download received since `seen` (updated).
  void count_received(const mirror::BlobFetch& fetch, std::uint64_t& seen);
  void withdraw_uncached();
  void record_demand(const mirror::BlobLocator& blob);
  void list_demand(const swarm_protocol::BlobRef& blob);
  Task<void> list_later(swarm_protocol::BlobRef blob, SteadyTime at);
  Task<void> serve_demand(std::uint64_t after, ResponseWriter& out, RequestLog& log);

  struct DemandEntry {
    std::uint64_t seq = 0;
    SteadyTime at;
    swarm_protocol::BlobRef blob;
  };

  mirror::MirrorNode& node_;
  p2p::Swarm& swarm_;
  PublisherOptions options_;
  ChunkSizing sizing_;
  RateMeter received_;  // what the supernode's upstream downloads receive, together
  std::map<std::string, std::shared_ptr<Blob>> blobs_;  // by digest
  std::deque<DemandEntry> demand_;                      // oldest first, seq ascending
  struct DemandState {
    SteadyTime listed;
    bool pending = false;  // a request came since: listed at listed + demand_repeat
  };
  std::map<std::string, DemandState> last_demand_;  // by digest, for demand_repeat
  std::uint64_t demand_seq_ = 0;
  Notifier demand_changed_;
  std::shared_ptr<asio::steady_timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool trim_pending_ = false;  // blobs were withdrawn: release_free_memory() at the next check
};

}  // namespace layerswarm::supernode
