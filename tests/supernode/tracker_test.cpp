#include <catch2/catch.hpp>
#include <libtorrent/bdecode.hpp>

#include "common/p2p/swarm.h"
#include "supernode/announce.h"
#include "supernode/tracker.h"

using namespace layerswarm;
using namespace layerswarm::supernode;
using namespace std::chrono_literals;

namespace {

const std::string kHash(20, '\x11');

std::string escaped(const std::string& raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : raw) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

std::string query(const std::string& peer_id, int port, std::uint64_t left,
                  const std::string& extra = "") {
  return "info_hash=" + escaped(kHash) + "&peer_id=" + escaped(peer_id) +
         "&port=" + std::to_string(port) + "&uploaded=0&downloaded=0&left=" + std::to_string(left) +
         "&compact=1&token=t0ken" + extra;
}

std::string id(char c) { return std::string(20, c); }

struct Answer {
  std::string failure;
  std::vector<std::pair<std::string, int>> peers;  // "a.b.c.d", port
  std::int64_t complete = -1, incomplete = -1, interval = -1;
};

Answer decode(const std::string& body) {
  Answer a;
  lt::error_code ec;
  const lt::bdecode_node n = lt::bdecode(body, ec);
  REQUIRE_FALSE(ec);
  REQUIRE(n.type() == lt::bdecode_node::dict_t);
  a.failure = std::string(n.dict_find_string_value("failure reason"));
  a.complete = n.dict_find_int_value("complete", -1);
  a.incomplete = n.dict_find_int_value("incomplete", -1);
  a.interval = n.dict_find_int_value("interval", -1);
  const std::string peers(n.dict_find_string_value("peers"));
  REQUIRE(peers.size() % 6 == 0);
  for (std::size_t i = 0; i < peers.size(); i += 6) {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(peers[i + k]); };
    a.peers.emplace_back(std::to_string(b(0)) + "." + std::to_string(b(1)) + "." +
                             std::to_string(b(2)) + "." + std::to_string(b(3)),
                         b(4) * 256 + b(5));
  }
  return a;
}

}  // namespace

TEST_CASE("announce parsing", "[unit][tracker]") {
  auto a = parse_announce(query(id('A'), 6881, 100, "&event=started&numwant=999&zone=rack-1"));
  REQUIRE(a);
  CHECK(a->info_hash == kHash);
  CHECK(a->peer_id == id('A'));
  CHECK(a->port == 6881);
  CHECK(a->left == 100);
  CHECK(a->event == Announce::Event::kStarted);
  CHECK(a->numwant == kMaxNumwant);
  CHECK(a->zone == "rack-1");
  CHECK(a->token == "t0ken");
  // '+' is a raw byte here, not a space.
  auto plus = parse_announce("info_hash=" + std::string(20, '+') + "&peer_id=" + escaped(id('B')) +
                             "&port=1");
  REQUIRE(plus);
  CHECK(plus->info_hash == std::string(20, '+'));
  for (const std::string& bad :
       {std::string("peer_id=" + escaped(id('A')) + "&port=1"),          // no info_hash
        "info_hash=" + escaped(kHash) + "&port=1",                       // no peer_id
        "info_hash=" + escaped(kHash) + "&peer_id=" + escaped(id('A')),  // no port
        query(id('A'), 70000, 0), query(id('A'), 1, 0, "&left=x"), query(id('A'), 1, 0, "&event=x"),
        "info_hash=%zz&peer_id=" + escaped(id('A')) + "&port=1",
        "info_hash=short&peer_id=" + escaped(id('A')) + "&port=1"}) {
    INFO(bad);
    CHECK_FALSE(parse_announce(bad));
  }
}

TEST_CASE("peer selection: same zone first, then seeds, then the most recent", "[unit][tracker]") {
  const auto t0 = std::chrono::steady_clock::now();
  auto peer = [&](char c, std::string zone, bool seed, int age) {
    return PeerInfo{std::string(4, c),
                    6881,
                    id(c),
                    std::move(zone),
                    seed,
                    t0 - std::chrono::seconds(age),
                    t0 + std::chrono::minutes(1)};
  };
  const std::vector<PeerInfo> swarm = {peer('a', "z2", true, 1),  peer('b', "z1", false, 5),
                                       peer('c', "z1", true, 9),  peer('d', "", false, 0),
                                       peer('e', "z1", false, 1), peer('r', "z1", false, 0)};
  const PeerInfo requester = peer('r', "z1", false, 0);
  const auto chosen = select_peers(swarm, requester, 10);
  std::string order;
  for (const auto& p : chosen) order += p.address[0];
  CHECK(order == "cebad");  // z1 seed, z1 newest, z1 older, other seed, other; never itself
  CHECK(select_peers(swarm, requester, 2).size() == 2);
  // Without a zone: seeds first.
  const auto nozone = select_peers(swarm, peer('x', "", false, 0), 3);
  CHECK(nozone[0].seed);
  CHECK(nozone[1].seed);
}

TEST_CASE("tracker: admission, compact peers, counts, stop and expiry", "[unit][tracker]") {
  Tracker tracker("t0ken", TrackerOptions{5s, 60s, 3, 2});
  auto now = std::chrono::steady_clock::now();

  CHECK(decode(tracker.announce(query(id('A'), 1000, 0).replace(0, 0, "x=1&"), "10.0.0.1", now))
            .failure.empty());
  const auto stranger = decode(tracker.announce(
      "info_hash=" + escaped(kHash) + "&peer_id=" + escaped(id('Z')) + "&port=1&token=nope",
      "10.0.0.9", now));
  CHECK(stranger.failure == "not a cluster member");
  CHECK(decode(tracker.announce("garbage", "10.0.0.9", now)).failure.find("info_hash") !=
        std::string::npos);

  const auto b =
      decode(tracker.announce(query(id('B'), 2000, 50, "&event=started"), "10.0.0.2", now));
  REQUIRE(b.failure.empty());
  CHECK(b.interval == 5);    // downloading: short, to learn of new seeds soon
  CHECK(b.complete == 1);    // A is a seed (left=0)
  CHECK(b.incomplete == 1);  // B
  REQUIRE(b.peers.size() == 1);
  CHECK(b.peers[0] == std::make_pair(std::string("10.0.0.1"), 1000));

  // The swarm holds at most 3 peers; a 4th still gets peers but is not recorded.
  decode(tracker.announce(query(id('C'), 3000, 50), "10.0.0.3", now));
  const auto d = decode(tracker.announce(query(id('D'), 4000, 50), "10.0.0.4", now));
  CHECK(d.peers.size() == 3);
  CHECK(tracker.counts(kHash) == std::make_pair(1, 2));

  // A seed is told to come back rarely.
  CHECK(decode(tracker.announce(query(id('A'), 1000, 0), "10.0.0.1", now)).interval == 60);

  // Stopped peers leave; silent ones expire after two of their own intervals plus grace: the
  // leecher C after 2 x 5 s + 10 s, the seed A only after 2 x 60 s + 10 s.
  decode(tracker.announce(query(id('B'), 2000, 50, "&event=stopped"), "10.0.0.2", now));
  CHECK(tracker.counts(kHash) == std::make_pair(1, 1));
  now += 21s;
  const auto e = decode(tracker.announce(query(id('E'), 5000, 50), "10.0.0.5", now));
  REQUIRE(e.peers.size() == 1);
  CHECK(e.peers[0] == std::make_pair(std::string("10.0.0.1"), 1000));  // the seed stays
  CHECK(tracker.counts(kHash) == std::make_pair(1, 1));
  now += 120s;
  const auto f = decode(tracker.announce(query(id('F'), 6000, 50), "10.0.0.6", now));
  CHECK(f.peers.empty());  // A and E are gone
  CHECK(tracker.counts(kHash) == std::make_pair(0, 1));
  CHECK(tracker.announces() >= 8);
}

// libtorrent raises any tracker interval below its min_announce_interval to it; the tracker
// expires peers by the interval it hands out. The two agree only if no interval handed out is
// below the minimum the agents' sessions are configured with.
TEST_CASE("tracker intervals are never below libtorrent's minimum", "[unit][tracker]") {
  const TrackerOptions defaults;
  CHECK(defaults.leecher_interval.count() >= layerswarm::p2p::kMinAnnounceIntervalSeconds);
  CHECK(defaults.seed_interval >= defaults.leecher_interval);
  // A leecher missing one announce is still listed; one missing two is gone.
  CHECK(kExpiryFactor * defaults.leecher_interval + kExpiryGrace > defaults.leecher_interval);
}

TEST_CASE("tracker: a closed site admits members by certificate only", "[unit][tracker]") {
  TrackerOptions options;
  options.members_only = true;
  Tracker tracker("t0ken", options);
  const auto now = std::chrono::steady_clock::now();
  // The token in the query no longer admits anyone.
  CHECK(decode(tracker.announce(query(id('A'), 1000, 0), "10.0.0.1", now)).failure ==
        "a closed site: announce with a member certificate");
  // A member (its certificate verified by the TLS layer) needs no token.
  const std::string no_token = "info_hash=" + escaped(kHash) + "&peer_id=" + escaped(id('B')) +
                               "&port=2000&left=0&compact=1";
  CHECK(decode(tracker.announce(no_token, "10.0.0.2", now, true)).failure.empty());
  CHECK(tracker.counts(kHash).first == 1);
}
