// A BitTorrent session for layerswarm's chunk torrents (libtorrent, on its own thread): hybrid
// (v1+v2) private single-file torrents whose bytes live at an offset inside a blob file
// (disk_io.h). Settings as measured in LIBS.md: uTP, DHT, LSD, UPnP, NAT-PMP and RC4 off, 100 ms
// ticks. Alerts are handled on the executor given at start; per-torrent events reach an observer
// there.
//
// Threading: every method, and every observer call, on the executor's thread (the io_context
// thread), except the static make_metainfo/inspect (blocking; any thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/async.h"
#include "common/p2p/disk_io.h"
#include "common/result.h"

namespace layerswarm::p2p {

// The shortest announce interval libtorrent honours: trackers that ask for less get this.
// The supernode's tracker hands out no interval below it (supernode/tracker.h), so the
// interval it expires peers by is the one they really use (libtorrent's default minimum,
// 300 s, silently stretched a 15 s interval and made late joiners see no peers).
inline constexpr int kMinAnnounceIntervalSeconds = 5;

// A node's swarm membership in a closed site (docs/security.md): its member certificate signed
// by the site CA, that certificate's key, and DH parameters (libtorrent takes them together).
struct Identity {
  std::string certificate;  // PEM
  std::string private_key;  // PEM
  std::string dh_params;    // PEM
};

inline constexpr int kDefaultPeersPerTorrent = 16;

struct SwarmOptions {
  // "ip:port"; port 0 picks one. With an identity the port speaks TLS only: a closed site's
  // torrents accept no plaintext peer.
  std::string listen = "0.0.0.0:6881";
  std::optional<Identity> identity = std::nullopt;
  int upload_rate_limit = 0;  // bytes per second, 0: unlimited
  int download_rate_limit = 0;
  // Connections per chunk torrent (and peers asked of the tracker per announce), the first
  // seed excepted. Many chunk torrents run at once, so a node trades with many more distinct
  // peers than this; every connection costs wake-ups per second on slow links
  // (docs/benchmarks.md, "Where slow-link CPU goes").
  int peers_per_torrent = kDefaultPeersPerTorrent;
  // Upload slots for all of the node's torrents together (libtorrent's unchoke_slots_limit);
  // 0: every interested peer gets one. Fewer, faster upload flows cost less CPU per byte on
  // slow links (docs/benchmarks.md "Upload slots and 256 KiB pieces").
  int upload_slots = 0;
  // The first seed's ledger (common/p2p/first_seed.h): how long a piece given to one peer is
  // refused to others while first copies of other pieces are still owed.
  std::chrono::milliseconds first_seed_hold{20'000};
  // One copy in flight (common/p2p/one_copy.h): a downloading torrent's request for a block
  // another of its connections has in flight waits until that connection has delivered
  // nothing for this long. 0: libtorrent's end game as it is.
  std::chrono::milliseconds one_copy_quiet{1'500};
  // Peer connections of all torrents together (libtorrent's connections_limit; it lowers the
  // limit further to 80% of RLIMIT_NOFILE). Each is a descriptor.
  int connections_limit = 8000;
  // Tracker announces over HTTP in flight at once (libtorrent's max_concurrent_http_announces,
  // 50 by default): each is a descriptor too, and a restart or a blob of many chunks makes
  // hundreds of announces at the same moment.
  int http_announces = 50;
};

struct ChunkInfo {
  std::string info_hash;  // hex of the v2 (SHA-256) info-hash
  int pieces = 0;
  int piece_length = 0;
  std::uint64_t length = 0;
};

class TorrentObserver {
 public:
  virtual ~TorrentObserver() = default;
  virtual void on_piece(int piece) = 0;         // verified and written
  virtual void on_failed(std::string why) = 0;  // the torrent stopped (storage, metadata)
};

using TorrentId = std::uint64_t;

struct SwarmStats {
  std::size_t torrents = 0;
  std::size_t peers = 0;  // connections, summed over the torrents
  // Totals since the swarm started (libtorrent's session counters).
  std::uint64_t payload_received = 0;
  std::uint64_t payload_sent = 0;
  std::uint64_t redundant_received = 0;  // received again, or after the piece was had
  std::uint64_t failed_received = 0;     // in pieces that failed their hash check
};

class Swarm {
 public:
  // Errors: kConfigInvalid (listen address), kInternal.
  static Result<std::unique_ptr<Swarm>> start(asio::any_io_executor executor, SwarmOptions options);
  ~Swarm();

  std::uint16_t port() const;
  // Joins a closed site later (the member certificate arrived after start): the listen port
  // turns TLS-only, and SSL torrents can be added from now on.
  void set_identity(Identity identity);

  // The metainfo (bencoded .torrent) of [offset, offset + length) of `fd`: one file, pieces of
  // `piece_length` bytes, hybrid v1+v2 (SHA-1 and SHA-256 piece checks), private. With
  // `root_cert` (the site CA, PEM) an SSL torrent: only peers holding a certificate it signed
  // exchange its pieces, over TLS. Reads and hashes the bytes. Errors: kStorage.
  static Result<std::string> make_metainfo(int fd, std::uint64_t offset, std::uint64_t length,
                                           int piece_length, const std::string& root_cert = {});
  // What a metainfo describes. Errors: kBadUpstreamResponse.
  static Result<ChunkInfo> inspect(const std::string& metainfo);

  struct Add {
    std::string metainfo;
    // The blob file, shared by the torrents of one blob (SharedFile::dup once per blob).
    std::shared_ptr<SharedFile> file;
    std::uint64_t offset = 0;  // where the torrent's bytes start in it
    bool seed = false;         // the bytes are there and verified
    std::vector<std::string> trackers;
    // In the torrent's peer list from the start, dialled on the first tracker reply; a seed
    // dials nobody (peers dial seeds: swarm.cpp base_settings).
    std::vector<std::pair<std::string, std::uint16_t>> peers;
    // With seed: the site's first seed. One upload slot per torrent (rotating), and a piece
    // already given to a peer is refused to others while first copies are owed (the ledger,
    // first_seed.h), so each piece leaves it about once and the peers trade the rest. (BEP 16
    // super seeding stalled libtorrent 2.0.8 peers for ~10 s per torrent and was 4.6x slower
    // on a fast link; measured, not used.)
    bool first_seed = false;
    // Without seed: this many pieces from the torrent's start have top priority from the first
    // request on (the client's first byte), the rest come rarest-first.
    int urgent_pieces = 0;
  };
  // Errors: kBadUpstreamResponse (metainfo), kStorage, kInternal, kBusy (the same torrent was
  // removed and libtorrent has not finished removing it: try again in a moment),
  // kUpstreamUnavailable (an SSL torrent, and this node has no member certificate yet).
  Result<TorrentId> add(Add params, TorrentObserver* observer);
  // Stops and forgets a torrent. Nothing is written through it once this returns.
  void remove(TorrentId id);
  // The torrent goes on (seeding) without an observer.
  void detach(TorrentId id);
  // Torrents in the session, their peer connections and byte counters: asks libtorrent for
  // fresh counters (one call) and answers with the last received.
  SwarmStats stats() const;
  // The same without asking again (for the other values of one metrics scrape).
  SwarmStats last_stats() const;
  // Streaming: pieces [first, first + count) are wanted first (top priority).
  void prioritize(TorrentId id, int first, int count);
  // Payload bytes the torrent has uploaded to peers since it was added (0 for an unknown id). Asks
  // libtorrent's thread: cheap, but not for every piece.
  std::uint64_t uploaded(TorrentId id) const;
  // Payload bytes the torrent has received since it was added, verified or not (0 for an
  // unknown id). Asks libtorrent's thread, like uploaded().
  std::uint64_t received(TorrentId id) const;
  // The torrent's peer connections, for a log line when a download stalls: per connection its
  // address, state (seed, chokes us, snubbed), requests in its queue against the queue
  // libtorrent wants, and payload received. Asks libtorrent's thread, like uploaded().
  std::string describe(TorrentId id) const;
  std::size_t torrents() const;

  struct Impl;

 private:
  explicit Swarm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// layerswarm_swarm_torrents and layerswarm_swarm_peers, sampled from `swarm` at each scrape
// (common/metrics.h) until Metrics::forget(owner).
void add_swarm_metrics(const void* owner, Swarm& swarm);

}  // namespace layerswarm::p2p
