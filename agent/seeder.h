// Seeding what is in demand (docs/architecture.md "Seeding what is in demand"). A cached blob's
// chunk torrents are loaded into the swarm only while peers want the blob: when the supernode's
// demand feed says some agent started downloading it, or right after this agent downloaded it.
// A loaded blob that nobody asked for and nobody downloaded from for `idle` is unloaded again.
// So a cache of any size costs nothing while idle (no descriptors, announces or ticks per cached
// chunk), and the descriptors in use are one per loaded blob, at most `max_blobs`. Memory grows
// with the chunk torrents in the swarm (~10 KiB each in libtorrent), so they are capped too:
// `max_torrents` counts the downloads' torrents as well as the seeding ones, and a download
// that needs room pushes out the blobs wanted least recently (make_room). The heap pages
// unloading freed are handed back to the system.
//
// A blob's chunk metainfo comes from its seeding record in the store (written when it was
// downloaded through the swarm), or else from the supernode (a blob completed over HTTP).
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/supernode_link.h"
#include "common/async.h"
#include "common/digest.h"
#include "common/store.h"

namespace layerswarm {
class Store;
}
namespace layerswarm::p2p {
class Swarm;
}

namespace layerswarm::agent {

struct SeederOptions {
  std::chrono::milliseconds idle{std::chrono::minutes(5)};  // unload after this without demand
  std::size_t max_blobs = 64;                               // loaded at once (descriptors)
  // Chunk torrents in the swarm at once, downloads' included (memory); downloads never wait.
  std::size_t max_torrents = 2048;
  std::chrono::milliseconds check_interval{std::chrono::seconds(5)};
  std::chrono::milliseconds retry_pause{std::chrono::seconds(2)};  // after a failed demand poll
  // Smaller blobs are never fetched through the swarm (SwarmSourceOptions::min_blob_size), so
  // demand for them is not served by seeding.
  std::uint64_t min_blob_size = 1 << 20;
};

inline constexpr std::chrono::minutes kWantedMemory{2};
inline constexpr std::size_t kMaxWanted = 4096;

class Seeder {
 public:
  // `link` and `swarm` must outlive the seeder.
  Seeder(asio::any_io_executor executor, SupernodeLink& link, p2p::Swarm& swarm,
         SeederOptions options);
  ~Seeder();

  // Starts following the demand feed and the idle check, for the blobs of `store` (which must
  // outlive the seeder). Call once, before adopt().
  void start(Store& store);

  // A blob just downloaded through the swarm and cached: its torrents (in the session already)
  // go on seeding; its seeding record (`layout`, one metainfo per chunk) is saved with it.
  void adopt(const Digest& digest, std::vector<std::uint64_t> torrents, const Layout& layout,
             const std::vector<std::string>& metainfo);

  // The seeding record stored with a blob: {"size", "chunk_size", "piece_size", "first_piece_size",
  // "metainfo": [base64, ...]}.
  static std::string make_record(const Layout& layout, const std::vector<std::string>& metainfo);

  // A download just added a chunk torrent: seeding blobs make way while the swarm holds more
  // than `max_torrents` (the last one stays, see enforce_cap).
  void make_room() { enforce_cap(); }

  std::size_t loaded_blobs() const { return seeding_.size(); }
  std::size_t loaded_torrents() const;

 private:
  struct Seeded {
    std::vector<std::uint64_t> torrents;
    SteadyTime last_demand;
    std::uint64_t uploaded = 0;  // as of the last idle check
    Store::Hold hold;            // not evicted while seeding (peers upload from it)
    std::uint64_t batch = 0;     // the demand batch that wanted it last (batch_)
  };

  Task<void> follow_demand();
  void on_demand(const swarm_protocol::BlobRef& blob);
  Task<void> load(swarm_protocol::BlobRef blob, std::uint64_t batch);
  // The seeding record of a blob cached over HTTP, from the supernode's chunk metainfo.
  Task<Result<std::string>> fetch_record(const swarm_protocol::BlobRef& blob);
  Status add_torrents(const Digest& digest, const std::string& record, std::uint64_t batch);
  // Whether `torrents` more chunk torrents, wanted in `batch`, fit the caps by pushing out only
  // blobs wanted before that batch.
  bool room_for(std::size_t torrents, std::uint64_t batch) const;
  // Chunk torrents in the swarm that are not seeding here: downloads in flight.
  std::size_t downloading_torrents() const;
  void check_idle();
  void unload(const std::string& key, const char* why);
  void enforce_cap();

  asio::any_io_executor executor_;
  SupernodeLink& link_;
  p2p::Swarm& swarm_;
  Store* store_ = nullptr;
  SeederOptions options_;
  std::map<std::string, Seeded> seeding_;  // by digest
  std::set<std::string> loading_;
  // Demand comes in batches (a feed answer; a download adopted is a batch of its own). Within
  // one, blobs are loaded newest first, and a blob that would push out another of the same batch
  // is not loaded: a burst over the caps (a restarted agent catching up on ten minutes of the
  // feed) loads the newest blobs that fit, instead of loading and unloading the rest in turn.
  std::uint64_t batch_ = 0;
  // Demand for blobs not cached here when it came (perhaps downloading): loaded if they are
  // cached within kWantedMemory (a blob completed over HTTP while a rollout wants it).
  std::map<std::string, std::pair<swarm_protocol::BlobRef, SteadyTime>> wanted_;
  std::shared_ptr<asio::steady_timer> check_timer_;
  // Blobs were unloaded since the last idle check: libtorrent has freed their torrents by the
  // next one, which returns the free heap to the system.
  bool trim_pending_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace layerswarm::agent
