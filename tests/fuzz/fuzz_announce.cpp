// Tracker announces on arbitrary query strings: an accepted one has 20-byte ids, a port, and
// a capped numwant; peer selection over its own result never returns the requester.
#include <string>

#include "supernode/announce.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string query(reinterpret_cast<const char*>(data), size);
  auto a = layerswarm::supernode::parse_announce(query);
  if (!a) return 0;
  if (a->info_hash.size() != 20 || a->peer_id.size() != 20 || a->port == 0) __builtin_trap();
  if (a->numwant < 0 || a->numwant > layerswarm::supernode::kMaxNumwant) __builtin_trap();
  layerswarm::supernode::PeerInfo self{"\x7f\0\0\x01", a->port, a->peer_id, a->zone,
                                       a->left == 0,   {},      {}};
  const auto chosen = layerswarm::supernode::select_peers({self}, self, 10);
  if (!chosen.empty()) __builtin_trap();
  return 0;
}
