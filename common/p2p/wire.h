// BitTorrent messages that the swarm's plugins write themselves (common/p2p/first_seed.cpp,
// common/p2p/one_copy.cpp). Header-only and free of libtorrent.
#pragma once

#include <array>
#include <cstdint>

namespace layerswarm::p2p {

inline constexpr char kRequestMessage = 6;  // BEP 3 "request"
inline constexpr char kCancelMessage = 8;   // BEP 3 "cancel"
inline constexpr char kRejectMessage = 16;  // BEP 6 (fast extension) "reject request"

// A message about one block: length 13, id, piece index, offset in the piece, length; each
// integer 4 bytes big-endian.
inline std::array<char, 17> block_message(char id, int piece, int start, int length) {
  std::array<char, 17> m{};
  auto put = [&m](std::size_t at, std::uint32_t v) {
    m[at] = static_cast<char>(v >> 24);
    m[at + 1] = static_cast<char>(v >> 16);
    m[at + 2] = static_cast<char>(v >> 8);
    m[at + 3] = static_cast<char>(v);
  };
  put(0, 13);
  m[4] = id;
  put(5, static_cast<std::uint32_t>(piece));
  put(9, static_cast<std::uint32_t>(start));
  put(13, static_cast<std::uint32_t>(length));
  return m;
}

}  // namespace layerswarm::p2p
