// How large a blob's chunk torrents are (docs/architecture.md "Chunks sized to the link").
//
// A chunk torrent exists only once the supernode holds the whole chunk (its info-hash covers
// every piece), so the chunk's download time is a step every byte of a rollout waits on, at
// its start and at its end. On a 5 Mbit/s link a 4 MiB chunk takes 6.7 s, and a 10-node
// rollout took 1.54x its bound; with 1 MiB chunks, 1.30x. On a 20 Mbit/s link 1 MiB chunks
// gained nothing over 4 MiB and cost the agents a fifth more CPU (more torrents, announces
// and ticks). So the supernode picks each blob's chunk size from the rate its upstream
// downloads run at: the largest of max, max/2, max/4, ... (at least min) that the link
// delivers within `chunk_time`.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include "common/async.h"

namespace layerswarm::supernode {

// BitTorrent piece size by default: a hash check and a HAVE to every peer per piece, so larger
// pieces cost the agents less CPU per byte; a node passes a piece on only once it holds all
// of it, so smaller pieces move through a rollout sooner (docs/architecture.md "Pieces of
// 256 KiB").
inline constexpr std::uint64_t kDefaultPieceSize = 256 << 10;

struct ChunkSizing {
  std::uint64_t max_chunk = 4 << 20;
  std::uint64_t min_chunk = 1 << 20;  // <= max_chunk; both multiples of the piece size
  std::uint64_t piece = kDefaultPieceSize;
  std::chrono::milliseconds chunk_time{3000};
  // How long a new download is watched for its rate when no recent rate is known.
  std::chrono::milliseconds estimate_time{1000};
};

// The chunk size for a link of `bytes_per_second`: the largest max_chunk / 2^k, rounded down
// to a whole number of pieces and at least min_chunk, that takes at most chunk_time.
std::uint64_t chunk_size_for(double bytes_per_second, const ChunkSizing& sizing);

// A chunk has at least this many pieces when its size allows: a chunk sized down for a slow
// link keeps a short step between nodes (docs/architecture.md "Pieces of 256 KiB").
inline constexpr std::uint64_t kMinPiecesPerChunk = 8;

// The piece size of a chunk of `chunk` bytes (a multiple of sizing.piece, a power of two):
// sizing.piece, halved while the chunk would have fewer than kMinPiecesPerChunk pieces, but
// not below 16 KiB (libtorrent's block). Always divides the chunk.
std::uint64_t piece_size_for(std::uint64_t chunk, const ChunkSizing& sizing);

// The first chunk of a blob has pieces this many times smaller than the others' (but not below
// 16 KiB): a client's first body byte waits for the blob's first verified piece, while later
// chunks arrive as it reads earlier ones (docs/architecture.md "The first chunk's small pieces").
inline constexpr std::uint64_t kFirstPieceDivisor = 4;

// The piece size of a blob's first chunk, of `chunk` bytes: piece_size_for(chunk) divided by
// kFirstPieceDivisor, at least 16 KiB and at most piece_size_for(chunk). Always divides it.
std::uint64_t first_piece_size_for(std::uint64_t chunk, const ChunkSizing& sizing);

// The rate the supernode's upstream downloads receive together, over the last `window`.
class RateMeter {
 public:
  explicit RateMeter(std::chrono::milliseconds window = std::chrono::seconds(4),
                     std::chrono::milliseconds min_span = std::chrono::seconds(1));
  // `bytes` arrived just now (at `now`).
  void add(std::uint64_t bytes, SteadyTime now);
  // Bytes per second over the window, when its samples span at least min_span and the last
  // one is at most min_span old (downloads are running); else nullopt.
  std::optional<double> rate(SteadyTime now) const;

 private:
  std::chrono::milliseconds window_;
  std::chrono::milliseconds min_span_;
  std::uint64_t total_ = 0;
  std::deque<std::pair<SteadyTime, std::uint64_t>> samples_;  // (time, total then), oldest first
};

}  // namespace layerswarm::supernode
