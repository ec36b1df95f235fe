#include "supernode/chunk_sizer.h"

#include <algorithm>

namespace layerswarm::supernode {

std::uint64_t chunk_size_for(double bytes_per_second, const ChunkSizing& s) {
  const double seconds = std::chrono::duration<double>(s.chunk_time).count();
  const double fits = bytes_per_second * seconds;
  const std::uint64_t piece = std::max<std::uint64_t>(s.piece, 1);
  std::uint64_t chunk = s.max_chunk;
  for (int i = 0; i < 64 && chunk > s.min_chunk && static_cast<double>(chunk) > fits; ++i) {
    chunk = std::max(s.min_chunk, chunk / 2 / piece * piece);
  }
  return std::max<std::uint64_t>(chunk, piece);
}

namespace {
constexpr std::uint64_t kSmallest = 16 << 10;  // libtorrent's block
}  // namespace

std::uint64_t piece_size_for(std::uint64_t chunk, const ChunkSizing& s) {
  std::uint64_t piece = std::max<std::uint64_t>(s.piece, 1);
  for (int i = 0; i < 64 && piece > kSmallest && chunk / piece < kMinPiecesPerChunk; ++i) {
    piece /= 2;
  }
  return piece;
}

std::uint64_t first_piece_size_for(std::uint64_t chunk, const ChunkSizing& s) {
  const std::uint64_t piece = piece_size_for(chunk, s);
  return std::min(piece, std::max(kSmallest, piece / kFirstPieceDivisor));
}

RateMeter::RateMeter(std::chrono::milliseconds window, std::chrono::milliseconds min_span)
    : window_(window), min_span_(min_span) {}

void RateMeter::add(std::uint64_t bytes, SteadyTime now) {
  total_ += bytes;
  samples_.emplace_back(now, total_);
  // Bytes counted at the first sample arrived before it, so the rate is measured between
  // samples, all within the window: an idle gap before it does not dilute the rate.
  while (!samples_.empty() && samples_.front().first < now - window_) samples_.pop_front();
  if (samples_.size() > 4096) samples_.pop_front();  // bounded whatever the sample rate
}

std::optional<double> RateMeter::rate(SteadyTime now) const {
  if (samples_.size() < 2) return std::nullopt;
  const auto& [first_at, first_total] = samples_.front();
  const auto& [last_at, last_total] = samples_.back();
  if (now - last_at > min_span_ || last_at - first_at < min_span_) return std::nullopt;
  const double span = std::chrono::duration<double>(last_at - first_at).count();
  return static_cast<double>(last_total - first_total) / span;
}

}  // namespace layerswarm::supernode
