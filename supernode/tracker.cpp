#include "supernode/tracker.h"

#include <openssl/crypto.h>

#include <libtorrent/bencode.hpp>
#include <libtorrent/entry.hpp>

#include <boost/asio/ip/address.hpp>
#include <iterator>

#include "common/log.h"

namespace layerswarm::supernode {
namespace {

std::string bencoded(const lt::entry& e) {
  std::string out;
  lt::bencode(std::back_inserter(out), e);
  return out;
}

std::string failure(const std::string& reason) {
  lt::entry e(lt::entry::dictionary_t);
  e["failure reason"] = reason;
  return bencoded(e);
}

// "1.2.3.4" / "::1" -> 4 or 16 raw bytes; "" when not an address.
std::string address_bytes(std::string_view ip) {
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(ip), ec);
  if (ec) return {};
  if (addr.is_v4()) {
    const auto b = addr.to_v4().to_bytes();
    return std::string(b.begin(), b.end());
  }
  const auto v6 = addr.to_v6();
  if (v6.is_v4_mapped()) {
    const auto b = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_bytes();
    return std::string(b.begin(), b.end());
  }
  const auto b = v6.to_bytes();
  return std::string(b.begin(), b.end());
}

void append_port(std::string& out, std::uint16_t port) {
  out.push_back(static_cast<char>(port >> 8));
  out.push_back(static_cast<char>(port & 0xff));
}

}  // namespace

Tracker::Tracker(std::string token, TrackerOptions options)
    : token_(std::move(token)), options_(options) {}

std::pair<int, int> Tracker::counts(const std::string& info_hash) const {
  auto it = swarms_.find(info_hash);
  if (it == swarms_.end()) return {0, 0};
  int seeds = 0;
  for (const auto& [key, peer] : it->second) seeds += peer.seed;
  return {seeds, static_cast<int>(it->second.size()) - seeds};
}

// Walks every swarm at most once per leecher interval: O(peers) then, O(1) otherwise.
void Tracker::expire(std::chrono::steady_clock::time_point now) {
  if (now - last_expiry_ < options_.leecher_interval) return;
  last_expiry_ = now;
  for (auto s = swarms_.begin(); s != swarms_.end();) {
    auto& peers = s->second;
    for (auto p = peers.begin(); p != peers.end();) {
      p = p->second.expires < now ? peers.erase(p) : std::next(p);
    }
    s = peers.empty() ? swarms_.erase(s) : std::next(s);
  }
}

std::string Tracker::announce(std::string_view query, std::string_view remote_ip,
                              std::chrono::steady_clock::time_point now, bool member) {
  auto parsed = parse_announce(query);
  if (!parsed) return failure(parsed.error().what());
  const Announce& a = *parsed;
  if (options_.members_only && !member) {
    return failure("a closed site: announce with a member certificate");
  }
  if (!member && (token_.empty() || a.token.size() != token_.size() ||
                  CRYPTO_memcmp(a.token.data(), token_.data(), token_.size()) != 0)) {
    return failure("not a cluster member");
  }
  const std::string address = address_bytes(remote_ip);
  if (address.empty()) return failure("unknown peer address");
  ++announces_;
  expire(now);

  const bool seed = a.left == 0;
  const std::chrono::seconds interval = seed ? options_.seed_interval : options_.leecher_interval;
  PeerInfo self{
      address, a.port, a.peer_id, a.zone, seed, now, now + kExpiryFactor * interval + kExpiryGrace};
  std::string key = address;
  append_port(key, a.port);
  auto swarm = swarms_.find(a.info_hash);
  if (a.event == Announce::Event::kStopped) {
    if (swarm != swarms_.end()) swarm->second.erase(key);
  } else {
    if (swarm == swarms_.end()) {
      if (swarms_.size() >= options_.max_swarms) return failure("tracker full");
      swarm = swarms_.emplace(a.info_hash, std::map<std::string, PeerInfo>()).first;
    }
    if (swarm->second.size() < options_.max_peers_per_swarm || swarm->second.count(key)) {
      swarm->second[key] = self;
    }
  }

  std::vector<PeerInfo> members;
  if (swarm != swarms_.end()) {
    for (const auto& [k, p] : swarm->second) members.push_back(p);
  }
  const auto chosen = a.event == Announce::Event::kStopped
                          ? std::vector<PeerInfo>()
                          : select_peers(members, self, static_cast<std::size_t>(a.numwant));
  std::string peers4, peers6;
  for (const auto& p : chosen) {
    std::string& out = p.address.size() == 4 ? peers4 : peers6;
    out += p.address;
    append_port(out, p.port);
  }
  int seeds = 0;
  for (const auto& p : members) seeds += p.seed;
  lt::entry e(lt::entry::dictionary_t);
  e["interval"] = static_cast<std::int64_t>(interval.count());
  e["min interval"] = static_cast<std::int64_t>(options_.leecher_interval.count());
  e["complete"] = seeds;
  e["incomplete"] = static_cast<int>(members.size()) - seeds;
  e["peers"] = peers4;
  if (!peers6.empty()) e["peers6"] = peers6;
  return bencoded(e);
}

}  // namespace layerswarm::supernode
