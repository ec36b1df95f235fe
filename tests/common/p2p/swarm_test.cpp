#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

#include "common/p2p/disk_io.h"
#include "common/p2p/first_seed.h"
#include "common/p2p/one_copy.h"
#include "common/p2p/swarm.h"
#include "common/p2p/wire.h"
#include "tests/support/fixtures.h"

using namespace layerswarm;
using namespace layerswarm::p2p;
using namespace std::chrono_literals;
using layerswarm::test::random_bytes;
using layerswarm::test::read_file;
using layerswarm::test::TempDir;
using layerswarm::test::write_file;

namespace {

class Pieces final : public TorrentObserver {
 public:
  void on_piece(int piece) override {
    done.insert(piece);
    order.push_back(piece);
  }
  void on_failed(std::string why) override { failed = std::move(why); }
  std::set<int> done;
  std::vector<int> order;  // as verified
  std::string failed;
};

struct Fd {
  explicit Fd(const std::string& path) : fd(::open(path.c_str(), O_RDWR | O_CLOEXEC)) {}
  ~Fd() { ::close(fd); }
  int fd;
};

// A seeder with an upload rate limit and a leecher on loopback; the seeder's file holds the
// blob, the leecher's as many zeros.
struct SeedAndLeech {
  SeedAndLeech(std::string bytes, int seed_upload_limit) : blob(std::move(bytes)) {
    write_file(dir.file("seed.bin"), blob);
    write_file(dir.file("leech.bin"), std::string(blob.size(), '\0'));
    seed_file.emplace(dir.file("seed.bin"));
    leech_file.emplace(dir.file("leech.bin"));
    SwarmOptions limited{"127.0.0.1:0"};
    limited.upload_rate_limit = seed_upload_limit;
    auto s = Swarm::start(ioc.get_executor(), limited);
    auto l = Swarm::start(ioc.get_executor(), SwarmOptions{"127.0.0.1:0"});
    REQUIRE(s);
    REQUIRE(l);
    seeder = std::move(*s);
    leecher = std::move(*l);
  }
  std::string leeched() const { return read_file(dir.file("leech.bin")); }

  TempDir dir;
  std::string blob;
  std::optional<Fd> seed_file;
  std::optional<Fd> leech_file;
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  std::unique_ptr<Swarm> seeder;
  std::unique_ptr<Swarm> leecher;
};

// A BitTorrent peer written by hand, on a blocking socket: it says what a test wants said,
// which libtorrent would not (a cancel of a request it never sent).
class WirePeer {
 public:
  explicit WirePeer(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  }
  ~WirePeer() { ::close(fd_); }
  WirePeer(const WirePeer&) = delete;
  WirePeer& operator=(const WirePeer&) = delete;

  // The handshake for the torrent with this v2 info-hash (hex; its first 20 bytes identify
  // the torrent on the wire), with the fast extension; true once the peer's handshake is in.
  bool handshake(const std::string& info_hash_hex) {
    if (!connected_) return false;
    std::string h(
        "\x13"
        "BitTorrent protocol",
        20);
    std::string reserved(8, '\0');
    reserved[7] = 0x04;  // fast extension (BEP 6)
    h += reserved;
    for (std::size_t i = 0; i < 40; i += 2) {
      h += static_cast<char>(std::stoi(info_hash_hex.substr(i, 2), nullptr, 16));
    }
    h += "-WP0001-abcdefghijkl";
    if (!put(h)) return false;
    std::string theirs;
    return get(68, theirs) && theirs.compare(1, 19, "BitTorrent protocol") == 0;
  }
  bool message(char id, const std::string& payload = {}) {
    std::string m(4, '\0');
    const std::uint32_t n = htonl(static_cast<std::uint32_t>(payload.size() + 1));
    std::memcpy(m.data(), &n, 4);
    m += id;
    m += payload;
    return put(m);
  }
  bool block_message(char id, int piece, int start, int length) {
    const auto m = layerswarm::p2p::block_message(id, piece, start, length);
    return put(std::string(m.data(), m.size()));
  }
  // The next message (id and payload); nullopt when none came before the deadline.
  std::optional<std::pair<char, std::string>> next(std::chrono::steady_clock::time_point until) {
    for (int i = 0; i < 10'000; ++i) {
      std::string len;
      if (!get(4, len, until)) return std::nullopt;
      std::uint32_t n = 0;
      std::memcpy(&n, len.data(), 4);
      n = ntohl(n);
      if (n == 0) continue;  // keep-alive
      if (n > (1u << 20)) return std::nullopt;
      std::string body;
      if (!get(n, body, until)) return std::nullopt;
      return std::make_pair(body[0], body.substr(1));
    }
    return std::nullopt;
  }

 private:
  bool put(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  bool get(std::size_t n, std::string& out,
           std::chrono::steady_clock::time_point until = std::chrono::steady_clock::now() + 10s) {
    out.clear();
    for (int i = 0; i < 100'000 && out.size() < n; ++i) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) return false;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out.size() == n;
  }

  int fd_;
  bool connected_ = false;
};

}  // namespace

TEST_CASE("chunk torrents move a byte range between blob files", "[unit][p2p]") {
  TempDir dir;
  const std::string blob = random_bytes(5 << 20, 31);
  write_file(dir.file("seed.bin"), blob);
  write_file(dir.file("leech.bin"), std::string(5 << 20, '\0'));
  Fd seed_file(dir.file("seed.bin"));
  Fd leech_file(dir.file("leech.bin"));

  // Bytes [1 MiB, 4 MiB) of the blob as one torrent of 256 KiB pieces.
  auto metainfo = Swarm::make_metainfo(seed_file.fd, 1 << 20, 3 << 20, 256 << 10);
  REQUIRE(metainfo);
  auto info = Swarm::inspect(*metainfo);
  REQUIRE(info);
  CHECK(info->pieces == 12);
  CHECK(info->piece_length == 256 << 10);
  CHECK(info->length == 3u << 20);
  CHECK(info->info_hash.size() == 64);
  // The same bytes make the same torrent; other bytes another one.
  CHECK(*Swarm::make_metainfo(seed_file.fd, 1 << 20, 3 << 20, 256 << 10) == *metainfo);
  CHECK(Swarm::inspect(*Swarm::make_metainfo(seed_file.fd, 0, 3 << 20, 256 << 10))->info_hash !=
        info->info_hash);
  CHECK_FALSE(Swarm::inspect("not a torrent"));
  // A length that is not a whole number of pieces (libtorrent pads the last one).
  auto odd = Swarm::inspect(*Swarm::make_metainfo(seed_file.fd, 0, 1'049'791, 256 << 10));
  REQUIRE(odd);
  CHECK(odd->length == 1'049'791u);
  CHECK(odd->pieces == 5);

  // What moves below: a range whose last piece is partial, as most chunks' last pieces are.
  const std::uint64_t length = (3 << 20) - 1000;
  metainfo = Swarm::make_metainfo(seed_file.fd, 1 << 20, length, 256 << 10);
  REQUIRE(metainfo);

  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);  // run_for waits for alerts instead of spinning
  auto seeder = Swarm::start(ioc.get_executor(), SwarmOptions{"127.0.0.1:0"});
  auto leecher = Swarm::start(ioc.get_executor(), SwarmOptions{"127.0.0.1:0"});
  REQUIRE(seeder);
  REQUIRE(leecher);
  const std::uint64_t by_root = pieces_checked_by_root();
  const std::uint64_t by_sha1 = pieces_checked_by_sha1();
  REQUIRE((*seeder)->add(
      Swarm::Add{*metainfo, *SharedFile::dup(seed_file.fd), 1 << 20, true, {}, {}, false},
      nullptr));
  Pieces pieces;
  // The leecher's copy goes to offset 2 MiB of its file.
  REQUIRE((*leecher)->add(Swarm::Add{*metainfo,
                                     *SharedFile::dup(leech_file.fd),
                                     2 << 20,
                                     false,
                                     {},
                                     {{"127.0.0.1", (*seeder)->port()}},
                                     false},
                          &pieces));
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (pieces.done.size() < 12 && pieces.failed.empty() &&
         std::chrono::steady_clock::now() < deadline) {
    ioc.run_for(50ms);
  }
  CHECK(pieces.failed.empty());
  REQUIRE(pieces.done.size() == 12);
  const std::string got = read_file(dir.file("leech.bin"));
  CHECK(got.substr(2 << 20, length) == blob.substr(1 << 20, length));
  CHECK(got.substr((2 << 20) + length) == std::string(3 << 20, '\0').substr(length));
  CHECK(got.substr(0, 2 << 20) == std::string(2 << 20, '\0'));  // nothing outside its range
  // Every piece, the partial last one included, was checked against its merkle root alone:
  // the leecher's twelve, and the seed's own checks (seed mode) of the pieces it uploaded.
  CHECK(pieces_checked_by_root() - by_root >= 12);
  CHECK(pieces_checked_by_sha1() == by_sha1);
}

// Pieces are checked against their merkle root alone where the metainfo has a piece layer
// (docs/architecture.md "One hash per piece"); a torrent of one piece has none and is checked
// with both hashes. Every shape of a chunk's pieces passes the check it gets, on the seed
// (seed mode) and on the leecher, and no torrent stops on "v1 and v2 hashes do not describe the
// same data".
TEST_CASE("pieces of every shape pass their hash check", "[unit][p2p]") {
  constexpr int kPiece = 64 << 10;  // four blocks
  struct Shape {
    std::uint64_t length;
    int pieces;
    bool by_root;
  };
  const Shape shape = GENERATE(Shape{13'025, 1, false},              // one piece, one block
                               Shape{kPiece - 1, 1, false},          // one piece, four blocks
                               Shape{2 * kPiece + 100, 3, true},     // last piece: one block
                               Shape{2 * kPiece + 40'000, 3, true},  // last piece: three blocks
                               Shape{3 * kPiece, 3, true});          // whole pieces
  INFO(shape.length);
  SeedAndLeech n(random_bytes(shape.length, 33), 0);
  auto metainfo = Swarm::make_metainfo(n.seed_file->fd, 0, shape.length, kPiece);
  REQUIRE(metainfo);
  REQUIRE(Swarm::inspect(*metainfo)->pieces == shape.pieces);
  const std::uint64_t by_root = pieces_checked_by_root();
  const std::uint64_t by_sha1 = pieces_checked_by_sha1();
  Pieces pieces;
  Swarm::Add leech{*metainfo, *SharedFile::dup(n.leech_file->fd), 0, false, {}, {}, false};
  leech.peers = {{"127.0.0.1", n.seeder->port()}};
  REQUIRE(n.leecher->add(std::move(leech), &pieces));
  Swarm::Add seed{*metainfo, *SharedFile::dup(n.seed_file->fd), 0, true, {}, {}, false};
  REQUIRE(n.seeder->add(std::move(seed), nullptr));
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (static_cast<int>(pieces.done.size()) < shape.pieces && pieces.failed.empty() &&
         std::chrono::steady_clock::now() < deadline) {
    n.ioc.run_for(20ms);
  }
  CHECK(pieces.failed.empty());
  REQUIRE(static_cast<int>(pieces.done.size()) == shape.pieces);
  CHECK(n.leeched() == n.blob);
  if (shape.by_root) {
    CHECK(pieces_checked_by_root() - by_root >= static_cast<std::uint64_t>(shape.pieces));
    CHECK(pieces_checked_by_sha1() == by_sha1);
  } else {
    CHECK(pieces_checked_by_root() == by_root);
    CHECK(pieces_checked_by_sha1() - by_sha1 >= 1);
  }
}

// An upload rate limit slows a seed down; it must not stop it. (The leecher dials: seeds make
// no outgoing connections, see "seeds make no outgoing connections" in tests/integration.)
TEST_CASE("a rate-limited seed still uploads", "[unit][p2p]") {
  SeedAndLeech n(random_bytes(1 << 20, 32), 256 << 10);
  auto metainfo = Swarm::make_metainfo(n.seed_file->fd, 0, 1 << 20, 256 << 10);
  REQUIRE(metainfo);
  Pieces pieces;
  Swarm::Add leech{*metainfo, *SharedFile::dup(n.leech_file->fd), 0, false, {}, {}, false};
  leech.peers = {{"127.0.0.1", n.seeder->port()}};
  REQUIRE(n.leecher->add(std::move(leech), &pieces));
  Swarm::Add seed{*metainfo, *SharedFile::dup(n.seed_file->fd), 0, true, {}, {}, false};
  const auto seed_id = n.seeder->add(std::move(seed), nullptr);
  REQUIRE(seed_id);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (pieces.done.size() < 4 && pieces.failed.empty() &&
         std::chrono::steady_clock::now() < deadline) {
    n.ioc.run_for(50ms);
  }
  CHECK(pieces.failed.empty());
  CHECK(pieces.done.size() == 4);
  CHECK(n.seeder->uploaded(*seed_id) >= (1u << 20));
  CHECK(n.leeched() == n.blob);
}

// A client waits for a blob's first byte, so a download's first piece comes first, whatever
// the piece picker would pick (libtorrent picks a torrent's first pieces at random unless told
// otherwise). Three torrents of 16 pieces from a rate-limited first seed: each verifies piece 0
// before any other (by chance: 1 in 16 per torrent).
TEST_CASE("a download's urgent first piece is verified first", "[unit][p2p]") {
  constexpr int kTorrents = 3;
  constexpr std::uint64_t kLength = 1 << 20;  // 16 pieces of 64 KiB each
  SeedAndLeech n(random_bytes(kTorrents * kLength, 33), 1 << 20);
  std::vector<Pieces> pieces(kTorrents);
  for (int t = 0; t < kTorrents; ++t) {
    const std::uint64_t offset = static_cast<std::uint64_t>(t) * kLength;
    auto metainfo = Swarm::make_metainfo(n.seed_file->fd, offset, kLength, 64 << 10);
    REQUIRE(metainfo);
    REQUIRE(Swarm::inspect(*metainfo)->pieces == 16);
    Swarm::Add seed{*metainfo, *SharedFile::dup(n.seed_file->fd), offset, true, {}, {}, true};
    REQUIRE(n.seeder->add(std::move(seed), nullptr));
    Swarm::Add leech{*metainfo, *SharedFile::dup(n.leech_file->fd), offset, false, {}, {}, false};
    leech.peers = {{"127.0.0.1", n.seeder->port()}};
    leech.urgent_pieces = 1;
    REQUIRE(n.leecher->add(std::move(leech), &pieces[static_cast<std::size_t>(t)]));
  }
  auto all_done = [&] {
    for (const auto& p : pieces) {
      if (p.done.size() < 16 || !p.failed.empty()) return false;
    }
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!all_done() && std::chrono::steady_clock::now() < deadline) n.ioc.run_for(50ms);
  for (const auto& p : pieces) {
    CHECK(p.failed.empty());
    REQUIRE(p.done.size() == 16);
    CHECK(p.order.front() == 0);
  }
  CHECK(n.leeched() == n.blob);
}

// The first seed's ledger (common/p2p/first_seed.h): a piece goes out once while first copies
// are owed; the peer it went to goes on with it; after the hold, or once nothing is owed, a
// second copy is served.
TEST_CASE("the first seed gives a piece once while first copies are owed", "[unit][p2p]") {
  auto ledger = std::make_shared<FirstSeedLedger>();
  const auto t0 = PieceBook::Clock::now();
  int a = 0, b = 0;  // two peers' identities: their addresses
  {
    PieceBook book(ledger, 3, 20s);
    PieceBook other(ledger, 2, 20s);
    CHECK(ledger->owed == 5);
    CHECK_FALSE(book.refuse(0, &a, t0));  // first copy
    CHECK(ledger->owed == 4);
    CHECK_FALSE(book.refuse(0, &a, t0 + 1s));  // its holder goes on
    CHECK(book.refuse(0, &b, t0 + 2s));        // a second copy while others are owed
    CHECK(ledger->refused == 1);
    CHECK_FALSE(book.refuse(0, &b, t0 + 20s));  // the holder had its time
    CHECK_FALSE(book.refuse(1, &b, t0 + 2s));
    CHECK_FALSE(book.refuse(2, &b, t0 + 2s));
    CHECK(book.refuse(2, &a, t0 + 3s));
    CHECK_FALSE(book.refuse(7, &a, t0));  // not a piece of this torrent: libtorrent's business
    CHECK(ledger->owed == 2);             // the other torrent's pieces
    CHECK_FALSE(other.refuse(0, &a, t0 + 4s));
    CHECK_FALSE(other.refuse(1, &a, t0 + 4s));
    CHECK(ledger->owed == 0);
    CHECK_FALSE(book.refuse(2, &a, t0 + 5s));  // nothing owed: spare capacity serves copies
  }
  CHECK(ledger->owed == 0);
  {
    PieceBook unwanted(ledger, 4, 20s);
    CHECK(ledger->owed == 4);
  }
  CHECK(ledger->owed == 0);  // a removed torrent owes nothing
}

// A node that held a request back counts it as sent, and libtorrent ends such a request only
// when the block or a reject comes (docs/architecture.md "One copy of a block in flight"). So
// every node answers a cancel with a reject, also for a request that never reached it, which
// libtorrent alone would ignore: without it, held requests clogged a slow connection's queue
// for its life.
TEST_CASE("a node answers every cancel with a reject, also for a request it never got",
          "[unit][p2p]") {
  TempDir dir;
  const std::string blob = random_bytes(1 << 20, 34);
  write_file(dir.file("seed.bin"), blob);
  Fd seed_file(dir.file("seed.bin"));
  auto metainfo = Swarm::make_metainfo(seed_file.fd, 0, 1 << 20, 256 << 10);
  REQUIRE(metainfo);
  const std::string info_hash = Swarm::inspect(*metainfo)->info_hash;
  asio::io_context ioc;
  auto seeder = Swarm::start(ioc.get_executor(), SwarmOptions{"127.0.0.1:0"});
  REQUIRE(seeder);
  REQUIRE((*seeder)->add(
      Swarm::Add{*metainfo, *SharedFile::dup(seed_file.fd), 0, true, {}, {}, false}, nullptr));
  // The torrent reaches libtorrent's thread a moment after add(): until then a handshake for
  // it is refused.
  std::unique_ptr<WirePeer> peer;
  for (int attempt = 0; attempt < 100 && !peer; ++attempt) {
    auto p = std::make_unique<WirePeer>((*seeder)->port());
    if (p->handshake(info_hash)) {
      peer = std::move(p);
    } else {
      ioc.run_for(50ms);
    }
  }
  REQUIRE(peer);
  REQUIRE(peer->message(15));  // have none
  REQUIRE(peer->message(2));   // interested
  REQUIRE(peer->block_message(kCancelMessage, 2, 16384, 16384));
  const auto until = std::chrono::steady_clock::now() + 10s;
  std::optional<std::pair<char, std::string>> reject;
  for (int i = 0; i < 1000 && !reject; ++i) {
    auto m = peer->next(until);
    if (!m) break;
    if (m->first == kRejectMessage) reject = std::move(m);
  }
  REQUIRE(reject);
  const auto expected = block_message(kRejectMessage, 2, 16384, 16384);
  CHECK(reject->second == std::string(expected.data() + 5, 12));
}

TEST_CASE("one copy of a block is in flight while its connection delivers", "[unit][p2p]") {
  auto stats = std::make_shared<OneCopyStats>();
  InFlightBook book(stats, 1500ms);
  const auto t0 = InFlightBook::Clock::now();
  int a = 0, b = 0, c = 0;  // three connections' identities
  const InFlightBook::Block x{3, 0, 16384}, y{3, 16384, 16384}, z{4, 0, 100};
  const auto sent_to = [](const std::vector<InFlightBook::Send>& s) {
    std::vector<InFlightBook::Conn> out;
    for (const auto& e : s) out.push_back(e.conn);
    return out;
  };

  SECTION("a second request waits, and is done when the block arrives") {
    CHECK(book.admit(x, &a, t0));
    CHECK_FALSE(book.admit(x, &b, t0 + 100ms));  // end game: held back
    CHECK_FALSE(book.admit(x, &c, t0 + 200ms));
    CHECK(stats->held == 2);
    CHECK(book.received(y, &a, t0 + 1000ms).empty());  // a delivers: not quiet
    CHECK(book.due(t0 + 2000ms).empty());
    CHECK_FALSE(book.admit(x, &b, t0 + 2100ms));  // asked again: still one waiter
    // x arrives: the held requests are cancelled (libtorrent counts them as sent).
    const auto cancels = book.received(x, &a, t0 + 2200ms);
    CHECK(sent_to(cancels) == std::vector<InFlightBook::Conn>{&b, &c});
    CHECK(cancels[0].block.piece == 3);
    CHECK(book.in_flight() == 0);
    CHECK(book.due(t0 + 9000ms).empty());  // nothing is sent for a block that arrived
    CHECK(stats->released == 0);
  }

  SECTION("a quiet connection's block goes out once more per quiet period") {
    CHECK(book.admit(x, &a, t0));
    CHECK_FALSE(book.admit(x, &b, t0 + 100ms));
    CHECK_FALSE(book.admit(x, &c, t0 + 100ms));
    CHECK(book.due(t0 + 1400ms).empty());
    CHECK(sent_to(book.due(t0 + 1500ms)) == std::vector<InFlightBook::Conn>{&b});
    CHECK(book.due(t0 + 2000ms).empty());  // b's copy is young
    CHECK(sent_to(book.due(t0 + 3000ms)) == std::vector<InFlightBook::Conn>{&c});
    CHECK(stats->released == 2);
    // A new request while the block's connection is quiet goes out at once (the end game).
    CHECK(book.admit(x, &a, t0 + 9000ms));
  }

  SECTION("a rejecting, choking or leaving connection hands its blocks to a waiter") {
    CHECK(book.admit(x, &a, t0));
    CHECK(book.admit(y, &a, t0));
    CHECK(book.admit(z, &a, t0));
    CHECK_FALSE(book.admit(x, &b, t0));
    CHECK_FALSE(book.admit(y, &c, t0));
    const auto r = book.ended(x, &a, t0 + 10ms);  // a rejected x
    REQUIRE(r.size() == 1);
    CHECK(r[0].conn == &b);
    CHECK(r[0].block.piece == 3);
    CHECK(r[0].block.start == 0);
    CHECK(r[0].block.length == 16384);
    CHECK(book.ended(x, &c, t0 + 10ms).empty());  // c was not x's connection
    const auto d = book.drop(&a, t0 + 20ms);      // a choked us: y to c, z to nobody
    CHECK(sent_to(d.sends) == std::vector<InFlightBook::Conn>{&c});
    CHECK(d.cancels.empty());  // a held nothing back
    CHECK(book.in_flight() == 2);
    CHECK(book.drop(&b, t0 + 30ms).sends.empty());  // b had x: nobody waits for it
    CHECK(book.in_flight() == 1);
    CHECK(book.admit(x, &a, t0 + 40ms));  // x is free again
  }

  SECTION("a choking connection's held requests are cancelled, not handed on") {
    CHECK(book.admit(x, &a, t0));
    CHECK(book.admit(y, &a, t0));
    CHECK_FALSE(book.admit(x, &b, t0));
    CHECK_FALSE(book.admit(y, &b, t0));
    CHECK_FALSE(book.admit(y, &c, t0));
    const auto d = book.drop(&b, t0 + 10ms);  // b choked us
    CHECK(d.sends.empty());
    REQUIRE(d.cancels.size() == 2);
    CHECK(sent_to(d.cancels) == std::vector<InFlightBook::Conn>{&b, &b});
    // y's waiter is c alone now; x has none.
    CHECK(sent_to(book.received(y, &a, t0 + 20ms)) == std::vector<InFlightBook::Conn>{&c});
    CHECK(book.received(x, &a, t0 + 30ms).empty());
    CHECK(book.in_flight() == 0);
  }

  SECTION("a connection's own request again is not a copy") {
    CHECK(book.admit(x, &a, t0));
    CHECK(book.admit(x, &a, t0 + 5s));
    CHECK(stats->held == 0);
  }
}
