// The swarm in production shapes: odd blob sizes and repository names, a swarm that stalls in
// the middle of a blob (the transfer continues from the supernode over HTTP at the byte
// reached), blobs cached over HTTP seeded like the others, a cache of many chunks that costs
// no descriptors while nobody wants it (lazy seeding), a download's first dial, and a node
// pulling alone from seeds that holds back copies of blocks in flight.
#include <signal.h>
#include <stdlib.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/slow_proxy.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;

namespace {

// 1 MiB chunks: at least 8 pieces each, so pieces of 128 KiB (supernode/chunk_sizer.h).
constexpr const char* kMiBChunks = R"("chunk_size": 1048576, "piece_size": 262144)";

std::string supernode_config(const std::string& extra = "") {
  return std::string(R"({"swarm": {)") + kMiBChunks + extra + "}}";
}

}  // namespace

TEST_CASE(
    "odd shapes through the swarm: below one piece and exact chunk multiples and chunks repos",
    "[integration][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  struct Blob {
    std::string repo;
    std::string bytes;
    std::string digest;
  };
  std::vector<Blob> blobs = {
      {"team/chunks", random_bytes(3 << 20, 1), ""},          // exactly 3 chunks
      {"chunks/blobs/x", random_bytes(100'000, 2), ""},       // below one piece
      {"site/app", random_bytes((1 << 20) + 131072, 3), ""},  // a chunk and one piece
      {"site/app", random_bytes((2 << 20) - 1, 4), ""},       // one byte short of 2 chunks
      {"site/last", random_bytes((1 << 20) + 1, 5), ""},      // a last chunk of one byte
  };
  for (auto& b : blobs) b.digest = push_blob(upstream, b.repo, b.bytes);
  auto supernode = start_supernode(dir, upstream.url(), supernode_config());
  // min_blob_size 0: every blob goes through the swarm, the 100 kB one too.
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token_file(dir),
                           R"({"swarm": {"min_blob_size": 0}})");
  for (const auto& b : blobs) {
    INFO(b.repo << " " << b.bytes.size() << " bytes");
    const HttpResult r = http_get(agent->address(), "/v2/" + b.repo + "/blobs/" + b.digest);
    CHECK(r.status == 200);
    CHECK(r.complete);
    CHECK(r.body == b.bytes);
    CHECK(eventually([&] { return agent->log_lines({b.digest, "source=swarm"}); }, 1) == 1);
  }
  CHECK(agent->stop() == 0);
  CHECK(counter(*agent, "source_fallbacks") == 0);
  CHECK(counter(*agent, "bytes_from_upstream") == 0);
  CHECK(counter(*agent, "bytes_from_supernode") == 0);
}

TEST_CASE("a swarm stalling mid-blob hands over to the supernode at the byte reached",
          "[integration][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(48 << 20, 7);  // exactly 48 chunks
  const std::string digest = push_blob(upstream, "site/blob", bytes);
  // The supernode seeds at 1 kB/s: what the swarm delivers comes from the holder.
  auto supernode =
      start_supernode(dir, upstream.url(), supernode_config(R"(, "upload_rate_limit": 1000)"));
  // The holder gets the blob over HTTP (its swarm stalls at once) and must still seed it.
  auto holder = start_agent(dir, upstream.url(), supernode->address(), "holder", token_file(dir),
                            R"({"swarm": {"stall_timeout": "1s"}})");
  const HttpResult first = http_get(holder->address(), "/v2/site/blob/blobs/" + digest);
  REQUIRE(first.status == 200);
  REQUIRE(first.body == bytes);
  CHECK(eventually([&] { return holder->log_lines({digest, "source=supernode"}); }, 1) == 1);

  // The late joiner reads nearly in order (priority window), so what it holds is a prefix.
  auto joiner = start_agent(dir, upstream.url(), supernode->address(), "joiner", token_file(dir),
                            R"({"swarm": {"stall_timeout": "8s", "priority_window": 4}})");
  HttpResult result;
  std::thread client(
      [&] { result = http_get(joiner->address(), "/v2/site/blob/blobs/" + digest); });
  // Once the first piece arrived from the holder, it freezes: the swarm stalls part-way.
  const std::string first_piece = bytes.substr(0, 131072);
  const bool started = wait_until(
      [&] {
        return holder->log_lines({digest, "seeding on demand"}) == 1 &&
               any_file_starts_with(joiner->data_dir() + "/tmp", first_piece);
      },
      30s, 1ms);
  ::kill(holder->process().pid(), SIGSTOP);
  client.join();
  ::kill(holder->process().pid(), SIGCONT);
  REQUIRE(started);
  INFO(joiner->log());
  CHECK(holder->log_lines({digest, "seeding on demand"}) == 1);
  CHECK(result.status == 200);
  CHECK(result.complete);
  CHECK(result.body == bytes);
  CHECK(joiner->log_lines({digest, "swarm failed at byte", "resuming from the next source"}) == 1);
  // The stall's log line names the connections of the chunk it waited on (the frozen holder's).
  CHECK(joiner->log_lines({digest, "swarm stalled at byte", ": 127.0.0.1:", " queue "}) == 1);
  CHECK(joiner->stop() == 0);
  const long long swarm = counter(*joiner, "bytes_from_swarm");
  const long long http = counter(*joiner, "bytes_from_supernode");
  CHECK(swarm > 0);
  CHECK(http > 0);
  CHECK(swarm + http == static_cast<long long>(bytes.size()));
  CHECK(counter(*joiner, "bytes_from_upstream") == 0);
  CHECK(counter(*joiner, "source_switches") == 1);
  CHECK(upstream.agent_requests("GET", "/v2/site/blob/blobs/" + digest) == 1);
}

namespace {

// The most descriptors a process holds, sampled every 10 ms (for a minute at most) until stop().
class FdPeak {
 public:
  explicit FdPeak(pid_t pid)
      : thread_([this, pid] {
          for (int i = 0; i < 6000 && !done_; ++i) {
            peak_ = std::max(peak_.load(), open_fds(pid));
            std::this_thread::sleep_for(10ms);  // a sampling period, not a synchronisation
          }
        }) {}
  FdPeak(const FdPeak&) = delete;
  FdPeak& operator=(const FdPeak&) = delete;
  ~FdPeak() { stop(); }
  int stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  std::atomic<int> peak_{0};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

using Blobs = std::vector<std::pair<std::string, std::string>>;  // digest, bytes

// `count` random blobs of 1 MiB pushed to `repo` (`seed` picks the bytes): under a supernode
// with 16 KiB chunks (start_tiny_chunks_supernode) each is 64 chunk torrents.
Blobs push_mib_blobs(Registry& upstream, const std::string& repo, int count, int seed) {
  Blobs blobs;
  for (int i = 0; i < count; ++i) {
    const std::string bytes = random_bytes(1 << 20, seed + i);
    blobs.emplace_back(push_blob(upstream, repo, bytes), bytes);
  }
  return blobs;
}

std::unique_ptr<Agent> start_tiny_chunks_supernode(const TempDir& dir, const Registry& upstream) {
  return start_supernode(dir, upstream.url(),
                         R"({"swarm": {"chunk_size": 16384, "piece_size": 16384}})");
}

// Registered with the supernode: an agent's idle state (that connection stays open between the
// registrations, every 30 s).
bool registered(Agent& supernode, Agent& agent) {
  return wait_until(
      [&] {
        const auto r = http_get(supernode.address(), "/api/v1/agents",
                                {{"Authorization", std::string("Bearer ") + kToken}});
        return r.status == 200 && r.body.find(agent.address()) != std::string::npos;
      },
      20s, 50ms);
}

}  // namespace

TEST_CASE("a cache of many chunk torrents holds no descriptors while nobody wants it",
          "[integration][swarm][seeding]") {
  TempDir dir;
  Registry upstream(dir);
  // 16 KiB chunks: 6 blobs of 1 MiB are 384 chunk torrents, far more than the descriptors the
  // agent may keep (one per loaded blob).
  constexpr int kBlobs = 6;
  const Blobs blobs = push_mib_blobs(upstream, "site/many", kBlobs, 100);
  auto supernode = start_tiny_chunks_supernode(dir, upstream);
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token_file(dir),
                           R"({"swarm": {"seed_idle": "1s"}})");
  const pid_t pid = agent->process().pid();
  const auto [soft, hard] = fd_limits(pid);
  CHECK(soft == hard);  // raised at start
  REQUIRE(registered(*supernode, *agent));
  const int idle_fds = open_fds(pid);
  FdPeak peak(pid);
  for (const auto& [digest, bytes] : blobs) {
    const HttpResult r = http_get(agent->address(), "/v2/site/many/blobs/" + digest);
    CHECK(r.status == 200);
    CHECK(r.body == bytes);
  }
  // Nobody else wants them: every blob stops seeding after seed_idle, and the descriptors go.
  CHECK(eventually([&] { return agent->log_lines({"stopped seeding (idle)"}); }, kBlobs) >= kBlobs);
  const bool closed = wait_until([&] { return open_fds(pid) <= idle_fds + 2; }, 30s);
  if (!closed) {
    std::string held;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      held += " " + std::filesystem::read_symlink(e.path(), ec).string();
    }
    INFO("descriptors held:" << held);
    CHECK(closed);
  }
  const int top = peak.stop();
  INFO("descriptors: idle " << idle_fds << ", peak " << top << ", after " << open_fds(pid));
  CHECK(top <= 256);

  // A second agent wants them: the first loads them again on demand and serves them.
  auto second = start_agent(dir, upstream.url(), supernode->address(), "second", token_file(dir));
  for (const auto& [digest, bytes] : blobs) {
    const HttpResult r = http_get(second->address(), "/v2/site/many/blobs/" + digest);
    CHECK(r.status == 200);
    CHECK(r.body == bytes);
  }
  CHECK(eventually([&] { return agent->log_lines({"seeding on demand (64 chunk torrents)"}); },
                   kBlobs) >= kBlobs);
  CHECK(second->stop() == 0);
  CHECK(counter(*second, "bytes_from_swarm") == static_cast<long long>(kBlobs) << 20);
}

// Every peer connection is a descriptor. Pulling blobs cut in 16 KiB chunks from a seeding
// agent, an agent would open one or two per chunk torrent in flight; the cap holds it (and
// the seed) under swarm.max_peer_connections, and the pull still completes from the swarm.
TEST_CASE("an agent's peer connections stay under max_peer_connections, however many chunks",
          "[integration][swarm][seeding]") {
  TempDir dir;
  Registry upstream(dir);
  constexpr int kBlobs = 4;  // 1 MiB each: 64 chunk torrents
  constexpr int kConnections = 16;
  const Blobs blobs = push_mib_blobs(upstream, "site/conns", kBlobs, 300);
  auto supernode = start_tiny_chunks_supernode(dir, upstream);
  const std::string config = R"({"swarm": {"max_peer_connections": 16}})";
  auto seed =
      start_agent(dir, upstream.url(), supernode->address(), "seed", token_file(dir), config);
  for (const auto& [digest, bytes] : blobs) {
    const HttpResult r = http_get(seed->address(), "/v2/site/conns/blobs/" + digest);
    REQUIRE(r.status == 200);
    CHECK(r.body == bytes);
  }
  auto agent =
      start_agent(dir, upstream.url(), supernode->address(), "agent", token_file(dir), config);
  REQUIRE(registered(*supernode, *agent));
  const int idle_fds = open_fds(agent->process().pid());
  FdPeak peak(agent->process().pid());
  for (const auto& [digest, bytes] : blobs) {
    const HttpResult r = http_get(agent->address(), "/v2/site/conns/blobs/" + digest);
    CHECK(r.status == 200);
    CHECK(r.body == bytes);
  }
  const int top = peak.stop();
  // Beyond its idle descriptors: the connections, libtorrent's slack of 10 incoming ones it
  // accepts to replace others, one per blob seeding, the 16 tracker announces the agent lets
  // run at once, and a few of the pull's own (the client, the supernode, the files written).
  INFO("descriptors: idle " << idle_fds << ", peak " << top);
  CHECK(top <= idle_fds + kConnections + 10 + kBlobs + 16 + 12);
  INFO(agent->log());
  CHECK(agent->stop() == 0);
  CHECK(counter(*agent, "bytes_from_swarm") > 0);
}

TEST_CASE("past the chunk torrent cap, the blob wanted least recently stops seeding",
          "[integration][swarm][seeding]") {
  TempDir dir;
  Registry upstream(dir);
  // 1 MiB blobs in 16 KiB chunks: 64 chunk torrents each; the cap holds two blobs.
  constexpr int kBlobs = 4;
  const Blobs blobs = push_mib_blobs(upstream, "site/capped", kBlobs, 200);
  auto supernode = start_tiny_chunks_supernode(dir, upstream);
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token_file(dir),
                           R"({"swarm": {"max_seeding_torrents": 128}})");
  for (const auto& [digest, bytes] : blobs) {
    const HttpResult r = http_get(agent->address(), "/v2/site/capped/blobs/" + digest);
    REQUIRE(r.status == 200);
    CHECK(r.body == bytes);
  }
  INFO(agent->log());
  // The first two blobs made way for the last two, oldest first; the last two still seed. (A
  // response ends before its blob is cached and seeding.)
  REQUIRE(eventually([&] { return agent->log_lines({blobs[3].first, "seeding after"}); }, 1) == 1);
  CHECK(eventually([&] { return agent->log_lines({"too many chunk torrents seeding"}); }, 2) == 2);
  CHECK(agent->log_lines({blobs[0].first, "stopped seeding (too many chunk torrents seeding)"}) ==
        1);
  CHECK(agent->log_lines({blobs[1].first, "stopped seeding (too many chunk torrents seeding)"}) ==
        1);
  CHECK(agent->log_lines({blobs[2].first, "stopped seeding"}) == 0);
  CHECK(agent->log_lines({blobs[3].first, "stopped seeding"}) == 0);
  CHECK(wait_until([&] { return metric(*agent, "layerswarm_swarm_torrents") == 128; }, 10s));
  // The cap counts a download's torrents: the oldest blob made way while the third blob was
  // downloading, not once it was seeding (the swarm never held 192 chunk torrents).
  const std::string log = agent->log();
  const auto pushed_out =
      log.find(blobs[0].first + ": stopped seeding (too many chunk torrents seeding)");
  const auto third_seeds = log.find(blobs[2].first + ": seeding after its download");
  REQUIRE(pushed_out != std::string::npos);
  REQUIRE(third_seeds != std::string::npos);
  CHECK(pushed_out < third_seeds);

  // Restarted, the agent catches up on the supernode's demand feed, which lists all four (its
  // own downloads): it loads the two newest and leaves the others, rather than loading each
  // and pushing the previous out.
  REQUIRE(agent->stop() == 0);
  agent->start();
  CHECK(eventually([&] { return agent->log_lines({"caps are full"}); }, 2) == 2);
  CHECK(agent->log_lines({blobs[0].first, "not seeded: the seeding caps are full"}) == 1);
  CHECK(agent->log_lines({blobs[1].first, "not seeded: the seeding caps are full"}) == 1);
  CHECK(agent->log_lines({blobs[2].first, "seeding on demand"}) == 1);
  CHECK(agent->log_lines({blobs[3].first, "seeding on demand"}) == 1);
  CHECK(agent->log_lines({"too many chunk torrents seeding"}) == 2);  // none since the restart
  CHECK(wait_until([&] { return metric(*agent, "layerswarm_swarm_torrents") == 128; }, 10s));
}

// An agent names the supernode to each chunk torrent it adds. libtorrent dials at once only on
// a tracker reply (its "connect boost"), otherwise in rounds once a second. This test build of
// the agent makes no rounds and announces once, so a chunk torrent whose peer list lacked the
// supernode when the reply came never connects: its blob stalls and falls back to HTTP. Named
// peers added after the torrent lost that race for about 1 in 150 chunk torrents, a second's
// wait each (docs/benchmarks.md "A chunk torrent's first dial"); 384 chunk torrents here.
TEST_CASE("a download dials the first seed on the tracker's first reply", "[integration][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  constexpr int kBlobs = 6;
  const Blobs blobs = push_mib_blobs(upstream, "site/dial", kBlobs, 400);
  auto supernode = start_tiny_chunks_supernode(dir, upstream);
  ::setenv("LAYERSWARM_TESTING_NO_DIAL_ROUNDS", "1", 1);
  Agent agent(dir,
              {"--upstream", upstream.url(), "--supernode", "http://" + supernode->address(),
               "--token-file", token_file(dir)},
              "", "agent", testhooks_agent_binary());
  ::unsetenv("LAYERSWARM_TESTING_NO_DIAL_ROUNDS");
  for (const auto& [digest, bytes] : blobs) {
    const HttpResult r = http_get(agent.address(), "/v2/site/dial/blobs/" + digest);
    CHECK(r.status == 200);
    CHECK(r.body == bytes);
  }
  INFO(agent.log());
  CHECK(agent.stop() == 0);
  CHECK(counter(agent, "bytes_from_swarm") == static_cast<long long>(kBlobs) << 20);
  CHECK(counter(agent, "source_fallbacks") == 0);
}

namespace {

// The response carried the whole blob, and all of it came through the swarm with no fallback.
// Stops the agent (its counters are read from its last log line).
void served_whole_from_swarm(const HttpResult& r, Agent& agent, const std::string& bytes) {
  INFO(agent.log());
  CHECK(r.status == 200);
  CHECK(r.complete);
  CHECK(r.body == bytes);
  CHECK(agent.stop() == 0);
  CHECK(counter(agent, "bytes_from_swarm") == static_cast<long long>(bytes.size()));
  CHECK(counter(agent, "source_fallbacks") == 0);
}

}  // namespace

// A chunk is published once the supernode holds all of it; on a slow upstream link that takes
// longer than a response may go without a byte (35 s). The client waits while the supernode's
// download advances (before: every pull of a 16 MiB-chunk rollout at 20 Mbit/s was cut).
TEST_CASE("a supernode on a slow upstream link: clients wait while its download advances",
          "[integration][swarm][slow-upstream]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes((7 << 20) / 2, 9);  // 3.5 MiB: one chunk
  const std::string digest = push_blob(upstream, "site/blob", bytes);
  SlowProxy slow(upstream.address(), 80 << 10);  // the supernode's link: ~45 s for the chunk
  auto supernode =
      std::make_unique<Agent>(dir,
                              std::vector<std::string>{"--upstream", "site.test", "--registry",
                                                       "site.test=http://" + slow.address(),
                                                       "--token-file", token_file(dir)},
                              R"({"swarm": {"chunk_size": 4194304, "piece_size": 262144}})",
                              "supernode", supernode_binary());
  auto agent = std::make_unique<Agent>(
      dir,
      std::vector<std::string>{"--upstream", "site.test", "--registry",
                               "site.test=" + upstream.url(), "--supernode",
                               "http://" + supernode->address(), "--token-file", token_file(dir)},
      "", "agent");
  const HttpResult r =
      http_request(agent->address(), "GET", "/v2/site/blob/blobs/" + digest, {}, {}, 120s);
  served_whole_from_swarm(r, *agent, bytes);
  CHECK(counter(*agent, "aborted_responses") == 0);
}

TEST_CASE("a swarm whose pieces complete slower than the stall limit while blocks arrive goes on",
          "[integration][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(256 << 10, 11);  // one 256 KiB piece
  const std::string digest = push_blob(upstream, "site/blob", bytes);
  // The supernode seeds at 40 kB/s: the piece takes ~6.5 s, longer than the agent's 4 s stall
  // limit, while a 16 KiB block arrives about every 0.4 s. Before blocks counted as progress,
  // the download handed over to HTTP after 4 s.
  auto supernode = start_supernode(
      dir, upstream.url(),
      R"({"swarm": {"chunk_size": 1048576, "piece_size": 262144, "upload_rate_limit": 40000}})");
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token_file(dir),
                           R"({"swarm": {"min_blob_size": 0, "stall_timeout": "4s"}})");
  const HttpResult r =
      http_request(agent->address(), "GET", "/v2/site/blob/blobs/" + digest, {}, {}, 120s);
  INFO(agent->log());
  // The access line is written once the response is sent: the client may see its end first.
  CHECK(eventually([&] { return agent->log_lines({digest, "source=swarm"}); }, 1) == 1);
  CHECK(agent->log_lines({digest, "swarm failed at byte"}) == 0);
  served_whole_from_swarm(r, *agent, bytes);
  CHECK(counter(*agent, "source_switches") == 0);
}

TEST_CASE("seeds make no outgoing connections: two nodes holding a blob do not dial each other",
          "[integration][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(2 << 20, 12);  // two chunk torrents
  const std::string digest = push_blob(upstream, "site/blob", bytes);
  auto supernode = start_supernode(dir, upstream.url(), supernode_config());
  // Debug logs: libtorrent's connection events are logged at debug level.
  const std::string config = R"({"swarm": {"min_blob_size": 0}, "log": {"level": "debug"}})";
  auto a = start_agent(dir, upstream.url(), supernode->address(), "a", token_file(dir), config);
  auto b = start_agent(dir, upstream.url(), supernode->address(), "b", token_file(dir), config);
  for (Agent* agent : {a.get(), b.get()}) {
    const HttpResult r = http_get(agent->address(), "/v2/site/blob/blobs/" + digest);
    REQUIRE(r.status == 200);
    REQUIRE(r.body == bytes);
  }
  // Both seed both chunk torrents now and learn of each other on their next announces (a
  // leecher announces every 5 s, a seed every 60 s). Before, a seed dialled every seed it knew
  // once a second, only for the connection to be closed as redundant ("upload to upload").
  const auto dials = [](Agent& agent) { return agent.log_lines({"outgoing connection to peer"}); };
  const auto redundant = [](Agent& agent) { return agent.log_lines({"upload to upload"}); };
  const int a0 = dials(*a), b0 = dials(*b), ra = redundant(*a), rb = redundant(*b);
  std::this_thread::sleep_for(8s);  // an observation window (nothing to wait for: no event)
  INFO(b->log());
  CHECK(dials(*a) == a0);
  CHECK(dials(*b) == b0);
  CHECK(redundant(*a) == ra);
  CHECK(redundant(*b) == rb);
}

// A node pulling alone from seeds (a late joiner) is bound by its own downlink: a second copy
// of a block in flight takes the place of a block it still lacks. It holds such requests back
// like any node (docs/architecture.md "One copy of a block in flight"). Before 2026-12-04 it
// raced them: 10.3% of what it received were copies at 100 Mbit/s, and at 20 Mbit/s its pull
// took 117.7 s against 109.5 s holding (docs/benchmarks.md "A lone late joiner holds its
// copies back").
TEST_CASE("a node pulling alone from seeds holds back copies of blocks in flight",
          "[integration][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(8 << 20, 13);  // eight chunk torrents
  const std::string digest = push_blob(upstream, "site/late", bytes);
  auto supernode = start_supernode(dir, upstream.url(), supernode_config());
  const std::string config = R"({"swarm": {"min_blob_size": 0}})";
  std::vector<std::unique_ptr<Agent>> seeds;
  for (const char* name : {"a", "b", "c"}) {
    seeds.push_back(
        start_agent(dir, upstream.url(), supernode->address(), name, token_file(dir), config));
    const HttpResult r = http_get(seeds.back()->address(), "/v2/site/late/blobs/" + digest);
    REQUIRE(r.status == 200);
    REQUIRE(r.body == bytes);
    REQUIRE(eventually([&] { return seeds.back()->log_lines({digest, "seeding after"}); }, 1) == 1);
  }
  auto late =
      start_agent(dir, upstream.url(), supernode->address(), "late", token_file(dir), config);
  const HttpResult r = http_get(late->address(), "/v2/site/late/blobs/" + digest);
  served_whole_from_swarm(r, *late, bytes);
  INFO(late->log());
  // Every connection of its chunk torrents was to a seed, and requests were held all the same.
  CHECK(late->log_lines({"swarm: held back ", " requests for blocks in flight elsewhere"}) == 1);
}

TEST_CASE("a slow upstream gets small chunks that the blob keeps when published again",
          "[integration][swarm][chunks]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(2 << 20, 41);
  const std::string digest = push_blob(upstream, "site/slow", bytes);
  // 256 KiB/s: a 1 MiB chunk would take 4 s, more than chunk_time; a 256 KiB one takes 1 s.
  SlowProxy slow(upstream.address(), 256 << 10);
  const std::string config =
      R"({"swarm": {"chunk_size": 1048576, "min_chunk_size": 262144, "piece_size": 262144,)"
      R"( "chunk_time": "1s"}})";
  auto supernode = start_supernode(dir, "http://" + slow.address(), config);
  auto agent = start_agent(dir, "http://" + slow.address(), supernode->address(), "agent",
                           token_file(dir), R"({"swarm": {"min_blob_size": 0}})");
  const HttpResult r = http_get(agent->address(), "/v2/site/slow/blobs/" + digest);
  REQUIRE(r.status == 200);
  CHECK(r.complete);
  CHECK(r.body == bytes);
  CHECK(eventually([&] { return agent->log_lines({digest, "source=swarm"}); }, 1) == 1);
  INFO(supernode->log());
  CHECK(supernode->log_lines({"in chunks of 256 KiB"}) == 1);

  const std::string layout =
      "/swarm/v1/blobs/" + digest + "?ns=" + slow.address() + "&repo=site/slow";
  const HeaderList auth = {{"Authorization", std::string("Bearer ") + kToken}};
  const HttpResult before = http_get(supernode->address(), layout, auth);
  REQUIRE(before.status == 200);
  CHECK(before.header("x-layerswarm-chunk-size") == "262144");
  CHECK(before.header("x-layerswarm-chunks") == "8");
  CHECK(before.header("x-layerswarm-piece-size") == "32768");        // 8 pieces per chunk
  CHECK(before.header("x-layerswarm-first-piece-size") == "16384");  // a quarter, >= a block
  // A restarted supernode publishes the cached blob again (a fresh publisher, as after its
  // idle withdrawal): with the chunks its peers already seed, not the largest.
  // The chunk size is committed with the blob (one index write): once the supernode's cache
  // holds the blob, its record is there too.
  REQUIRE(wait_until(
      [&] {
        return http_get(supernode->address(), "/metrics", auth)
                   .body.find("\nlayerswarm_cache_bytes 2097152\n") != std::string::npos;
      },
      30s, 20ms));
  REQUIRE(supernode->stop() == 0);
  supernode->start();
  const HttpResult after = http_get(supernode->address(), layout, auth);
  REQUIRE(after.status == 200);
  CHECK(after.header("x-layerswarm-chunk-size") == "262144");
  CHECK(after.header("x-layerswarm-piece-size") == "32768");
  CHECK(after.header("x-layerswarm-first-piece-size") == "16384");
  CHECK(upstream.agent_requests("GET", "/v2/site/slow/blobs/" + digest) == 1);
}
