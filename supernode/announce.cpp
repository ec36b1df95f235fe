#include "supernode/announce.h"

#include <algorithm>
#include <charconv>

namespace layerswarm::supernode {
namespace {

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Percent-decoding that keeps '+' as is: announce values are raw bytes.
std::optional<std::string> decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Error bad(const std::string& what) { return Error(Errc::kNameInvalid, "announce: " + what); }

}  // namespace

Result<Announce> parse_announce(std::string_view query) {
  Announce a;
  bool has_port = false;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    auto value = decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value) return bad("malformed escape in " + std::string(key));
    if (key == "info_hash") {
      a.info_hash = std::move(*value);
    } else if (key == "peer_id") {
      a.peer_id = std::move(*value);
    } else if (key == "port") {
      const auto p = to_u64(*value);
      if (!p || *p == 0 || *p > 65535) return bad("bad port");
      a.port = static_cast<std::uint16_t>(*p);
      has_port = true;
    } else if (key == "uploaded" || key == "downloaded" || key == "left") {
      const auto v = to_u64(*value);
      if (!v) return bad("bad " + std::string(key));
      (key == "uploaded" ? a.uploaded : key == "downloaded" ? a.downloaded : a.left) = *v;
    } else if (key == "numwant") {
      const auto v = to_u64(*value);
      if (!v) return bad("bad numwant");
      a.numwant = static_cast<int>(std::min<std::uint64_t>(*v, kMaxNumwant));
    } else if (key == "event") {
      if (*value == "started")
        a.event = Announce::Event::kStarted;
      else if (*value == "completed")
        a.event = Announce::Event::kCompleted;
      else if (*value == "stopped")
        a.event = Announce::Event::kStopped;
      else if (!value->empty() && *value != "paused")
        return bad("unknown event");
    } else if (key == "token") {
      a.token = std::move(*value);
    } else if (key == "zone") {
      if (value->size() > 64) return bad("zone label too long");
      a.zone = std::move(*value);
    }
    // Other keys (compact, key, corrupt, redundant, supportcrypto, ...) are ignored.
  }
  if (a.info_hash.size() != 20) return bad("info_hash must be 20 bytes");
  if (a.peer_id.size() != 20) return bad("peer_id must be 20 bytes");
  if (!has_port) return bad("port is missing");
  return a;
}

std::vector<PeerInfo> select_peers(const std::vector<PeerInfo>& swarm, const PeerInfo& requester,
                                   std::size_t n) {
  std::vector<const PeerInfo*> candidates;
  for (const auto& p : swarm) {
    const bool self = p.peer_id == requester.peer_id ||
                      (p.address == requester.address && p.port == requester.port);
    if (!self) candidates.push_back(&p);
  }
  const auto rank = [&](const PeerInfo* p) {
    const bool same_zone = !requester.zone.empty() && p->zone == requester.zone;
    return std::make_tuple(!same_zone, !p->seed);  // smaller first
  };
  std::stable_sort(candidates.begin(), candidates.end(), [&](const PeerInfo* a, const PeerInfo* b) {
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    return a->last_seen > b->last_seen;
  });
  std::vector<PeerInfo> out;
  for (std::size_t i = 0; i < candidates.size() && i < n; ++i) out.push_back(*candidates[i]);
  return out;
}

}  // namespace layerswarm::supernode
