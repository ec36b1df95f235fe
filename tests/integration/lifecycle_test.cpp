// The cache's lifecycle against a real upstream (docs/architecture.md "The cache's lifecycle"):
// a disk budget kept by LRU eviction, downloads resumed after kill -9, a changed cached file
// never served, a full disk (a small tmpfs) that fails no pull, a start on a full disk.
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/fixtures.h"
#include "tests/support/slow_proxy.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Bytes of the regular files under `dir`.
std::uint64_t tree_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

std::string blob_target(const std::string& repo, const std::string& digest) {
  return "/v2/" + repo + "/blobs/" + digest;
}

// The length a partial download of the agent records (tmp/<hex>.partial.len), 0 when none.
std::uint64_t recorded_partial(const Agent& agent, const std::string& digest) {
  const std::string hex = digest.substr(digest.find(':') + 1);
  const std::string text = read_file(agent.data_dir() + "/tmp/" + hex + ".partial.len");
  return text.empty() ? 0 : std::stoull(text);
}

// A tmpfs of `mib` MiB at `path`, unmounted on destruction; ok() is false where mounting is not
// allowed (no CAP_SYS_ADMIN).
class SmallDisk {
 public:
  SmallDisk(const std::string& path, int mib) : path_(path) {
    fs::create_directories(path);
    const std::string options = "size=" + std::to_string(mib) + "m";
    ok_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallDisk() {
    if (ok_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string path_;
  bool ok_ = false;
};

// Writes `path` until the filesystem has no room left.
void fill_disk(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  const std::string block(1 << 20, 'f');
  for (int i = 0; i < 100'000 && out; ++i) out.write(block.data(), block.size());
  out.flush();
  // The last bytes: what fits in the remaining blocks.
  const std::string small(4096, 'f');
  for (int i = 0; i < 100'000 && out; ++i) out.write(small.data(), small.size());
}

}  // namespace

TEST_CASE("with a disk budget, pulls one after another never fail and the cache stays within it",
          "[integration][lifecycle]") {
  TempDir dir;
  Registry upstream(dir);
  constexpr std::uint64_t kBudget = 3 << 20;
  std::vector<std::pair<std::string, std::string>> blobs;  // digest, bytes
  for (unsigned i = 0; i < 8; ++i) {
    std::string bytes = random_bytes((1 << 20) - 1000 + i, 40 + i);
    blobs.emplace_back(push_blob(upstream, "budget/app", bytes), std::move(bytes));
  }
  Agent agent(dir, {"--upstream", upstream.url()},
              R"({"cache": {"max_size": "3MiB", "evict_to": "2MiB"}})");
  for (const auto& [digest, bytes] : blobs) {
    auto r = http_get(agent.address(), blob_target("budget/app", digest));
    INFO(digest << " " << r.error);
    REQUIRE(r.status == 200);
    REQUIRE(r.complete);
    CHECK(r.body == bytes);
    // Room is made before a blob is written, so the cache never passes the budget.
    CHECK(tree_bytes(agent.data_dir() + "/blobs") <= kBudget);
  }
  // Least recently used first: the first blobs went, the last one is there.
  CHECK_FALSE(agent.blob_file_exists(blobs.front().first));
  CHECK(wait_until([&] { return agent.blob_file_exists(blobs.back().first); }, 10s));
  CHECK(agent.log_lines({"cache eviction", "least recently used first"}) >= 1);
  // An evicted blob is fetched again on demand.
  auto again = http_get(agent.address(), blob_target("budget/app", blobs.front().first));
  CHECK(again.status == 200);
  CHECK(again.body == blobs.front().second);
  CHECK(upstream.requests("GET", blob_target("budget/app", blobs.front().first)) == 2);
  REQUIRE(agent.stop() == 0);
  CHECK(counter(agent, "evicted_blobs") >= 5);
  CHECK(counter(agent, "errors") == 0);
}

TEST_CASE("a 200 MiB download killed five times resumes from the bytes on disk each time",
          "[integration][lifecycle]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(200 << 20, 7);
  const std::string digest = push_blob(upstream, "resume/app", bytes);
  SlowProxy slow(upstream.address(), 64 << 20);  // ~3 s for the blob
  Agent agent(dir, {"--upstream", "http://" + slow.address()});
  const std::string target = blob_target("resume/app", digest);
  std::uint64_t last = 0;
  for (int kill = 0; kill < 5; ++kill) {
    auto pull = std::async(std::launch::async, [&] { return http_get(agent.address(), target); });
    // Kill once this run recorded 24 MiB more than the last (the issue killed at 0.2 to 3 s
    // into a 210 MB pull).
    const bool progressed =
        wait_until([&] { return recorded_partial(agent, digest) >= last + (24 << 20); }, 60s, 2ms);
    REQUIRE(progressed);
    last = recorded_partial(agent, digest);
    agent.process().kill();
    auto cut = pull.get();
    CHECK_FALSE(cut.complete);  // nothing unverified is ever completed
    agent.start();
  }
  auto whole = http_get(agent.address(), target);
  REQUIRE(whole.status == 200);
  REQUIRE(whole.complete);
  CHECK(whole.body == bytes);
  CHECK(agent.log_lines({"resuming a partial download at byte"}) >= 5);
  // The upstream sent the blob about once (goal: <= 1.1x), not once per kill.
  const double sent =
      static_cast<double>(slow.bytes_forwarded()) / static_cast<double>(bytes.size());
  INFO("upstream sent " << sent << " x the blob");
  CHECK(sent <= 1.1);
  // Committed once verified (the client's last byte may leave first).
  CHECK(wait_until([&] { return agent.blob_file_exists(digest); }, 10s));
  CHECK(wait_until([&] { return fs::is_empty(agent.data_dir() + "/tmp"); }, 10s));
}

TEST_CASE("a byte flipped in a cached blob is caught before a client gets it, and refetched",
          "[integration][lifecycle]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(3 << 20, 9);
  const std::string digest = push_blob(upstream, "rot/app", bytes);
  Agent agent(dir, {"--upstream", upstream.url()});
  const std::string target = blob_target("rot/app", digest);
  REQUIRE(http_get(agent.address(), target).body == bytes);
  // The client's last byte may leave before the blob is renamed in and indexed: the download
  // is over once it is no longer in flight. (A request before that joins the download.)
  REQUIRE(wait_until([&] { return metric(agent, "layerswarm_downloads_in_flight") == 0; }, 10s));
  const std::string hex = digest.substr(7);
  const std::string file = agent.data_dir() + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
  REQUIRE(fs::exists(file));
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12345);
    f.put('\x5a' ^ bytes[12345]);
  }
  auto served = http_get(agent.address(), target);
  CHECK(served.status == 200);
  CHECK(served.complete);
  CHECK(served.body == bytes);  // the refetched bytes, not the changed ones
  CHECK(upstream.requests("GET", target) == 2);
  CHECK(agent.log_lines({digest, "quarantined"}) == 1);
  CHECK_FALSE(fs::is_empty(agent.data_dir() + "/quarantine"));
  REQUIRE(agent.stop() == 0);
  CHECK(counter(agent, "corrupt_blobs") == 1);
}

TEST_CASE("a full disk fails no pull: blobs stream through uncached, caching resumes by itself",
          "[integration][lifecycle]") {
  TempDir dir;
  SmallDisk disk(dir.file("agent-data"), 24);
  if (!disk.ok()) {
    WARN("cannot mount a tmpfs here (needs CAP_SYS_ADMIN); full-disk test skipped");
    return;
  }
  Registry upstream(dir);
  const std::string big = random_bytes(30 << 20, 11);  // more than the whole disk
  const std::string big_digest = push_blob(upstream, "full/app", big);
  const std::string small = random_bytes(300 << 10, 12);
  const std::string small_digest = push_blob(upstream, "full/app", small);
  const std::string later = random_bytes(200 << 10, 13);
  const std::string later_digest = push_blob(upstream, "full/app", later);
  auto agent = std::make_unique<Agent>(dir, std::vector<std::string>{"--upstream", upstream.url()},
                                       R"({"cache": {"space_check_interval": "200ms"}})");

  auto r = http_get(agent->address(), blob_target("full/app", big_digest));
  CHECK(r.status == 200);
  CHECK(r.complete);
  CHECK(r.body == big);
  CHECK(agent->log_lines({big_digest, "not cached (no room)"}) == 1);
  CHECK_FALSE(agent->blob_file_exists(big_digest));
  // The next blob that fits is cached as usual.
  CHECK(http_get(agent->address(), blob_target("full/app", small_digest)).body == small);
  CHECK(wait_until([&] { return agent->blob_file_exists(small_digest); }, 10s));

  // A disk filled by someone else: the agent restarts on it read-only, serves what it has and
  // streams the rest.
  REQUIRE(agent->stop() == 0);
  fill_disk(agent->data_dir() + "/filler");
  agent->start();
  CHECK(agent->log_lines({"the cache is read-only until space returns"}) == 1);
  auto cached = http_get(agent->address(), blob_target("full/app", small_digest));
  CHECK(cached.status == 200);
  CHECK(cached.body == small);
  auto streamed = http_get(agent->address(), blob_target("full/app", later_digest));
  CHECK(streamed.status == 200);
  CHECK(streamed.complete);
  CHECK(streamed.body == later);
  CHECK_FALSE(agent->blob_file_exists(later_digest));
  // Space returns: caching resumes without a restart.
  fs::remove(agent->data_dir() + "/filler");
  CHECK(eventually([&] { return agent->log_lines({"caching resumes"}); }, 1) == 1);
  CHECK(http_get(agent->address(), blob_target("full/app", later_digest)).body == later);
  CHECK(wait_until([&] { return agent->blob_file_exists(later_digest); }, 10s));
  REQUIRE(agent->stop() == 0);
  CHECK(counter(*agent, "uncached_blobs") == 1);  // this run: `later` while the disk was full
  CHECK(counter(*agent, "errors") == 0);
}

TEST_CASE("pins are fetched at start, never evicted, and pulled by tag offline past max_stale",
          "[integration][lifecycle]") {
  TempDir dir;
  Registry upstream(dir);
  const Image pinned = make_image(dir, "pinned",
                                  {"--layer", "1M", "--layer", "500K", "--platform", "linux/amd64",
                                   "--platform", "linux/arm64"});
  push_image(dir, pinned, upstream, "edge/pinned:v1", {"--all"});
  const Image other = make_image(dir, "other", {"--layer", "200K", "--label", "other"});
  push_image(dir, other, upstream, "edge/other:v1");
  std::vector<std::pair<std::string, std::string>> filler;
  for (unsigned i = 0; i < 6; ++i) {
    std::string bytes = random_bytes(1 << 20, 60 + i);
    filler.emplace_back(push_blob(upstream, "edge/filler", bytes), std::move(bytes));
  }
  Agent agent(dir, {"--upstream", upstream.url()},
              R"({"cache": {"max_size": "4MiB", "max_stale": "1s", "tag_ttl": "0s",
                  "pins": [{"image": "edge/pinned:v1", "platforms": ["linux/arm64"]}]}})");
  REQUIRE(eventually([&] { return agent.log_lines({"cache.pins: 1 images pinned"}); }, 1, 30s) ==
          1);
  // mkimage lists each platform's layers, config and manifest, amd64 first, then the index.
  const auto& blobs = pinned.summary["blobs"];
  REQUIRE(blobs.size() == 9);
  for (int i = 4; i <= 6; ++i) CHECK(agent.blob_file_exists(blobs[i]["digest"]));
  for (int i = 0; i <= 2; ++i) CHECK_FALSE(agent.blob_file_exists(blobs[i]["digest"]));

  // Pressure: more than the budget goes through; the pinned blobs stay.
  for (const auto& [digest, bytes] : filler) {
    auto r = http_get(agent.address(), blob_target("edge/filler", digest));
    REQUIRE(r.status == 200);
    CHECK(r.body == bytes);
    CHECK(tree_bytes(agent.data_dir() + "/blobs") <= (4u << 20));
  }
  for (int i = 4; i <= 6; ++i) CHECK(agent.blob_file_exists(blobs[i]["digest"]));
  CHECK(agent.log_lines({"cache eviction"}) >= 1);
  const HeaderList accept = {{"Accept",
                              "application/vnd.oci.image.index.v1+json, "
                              "application/vnd.oci.image.manifest.v1+json"}};
  REQUIRE(http_get(agent.address(), "/v2/edge/other/manifests/v1", accept).status == 200);

  // Offline, and the tags age past max_stale (the scenario's time passing, not a
  // synchronisation).
  upstream.stop();
  std::this_thread::sleep_for(1200ms);
  auto tag = http_get(agent.address(), "/v2/edge/pinned/manifests/v1", accept);
  CHECK(tag.status == 200);
  CHECK(tag.header("docker-content-digest") == pinned.digest());
  auto arm = http_get(agent.address(),
                      "/v2/edge/pinned/manifests/" + blobs[7]["digest"].get<std::string>(), accept);
  CHECK(arm.status == 200);
  for (int i = 4; i <= 6; ++i) {
    auto r = http_get(agent.address(), blob_target("edge/pinned", blobs[i]["digest"]));
    CHECK(r.status == 200);
    CHECK(r.complete);
  }
  // An unpinned tag past max_stale is not served stale.
  CHECK(http_get(agent.address(), "/v2/edge/other/manifests/v1", accept).status >= 500);
  CHECK(agent.log_lines({"edge/pinned:v1", "past cache.max_stale"}) >= 1);
  CHECK(agent.log_lines({"unreachable", "offline"}) >= 1);
  REQUIRE(agent.stop() == 0);
  CHECK(counter(agent, "upstreams_offline") >= 1);
  CHECK(counter(agent, "offline_episodes") >= 1);
  // Restarted while still offline (an edge node rebooting): the pinned tag is served from the
  // first request, before any pin pass could resolve it.
  agent.start();
  auto again = http_get(agent.address(), "/v2/edge/pinned/manifests/v1", accept);
  CHECK(again.status == 200);
  CHECK(again.header("docker-content-digest") == pinned.digest());
  for (int i = 4; i <= 6; ++i) {
    CHECK(http_get(agent.address(), blob_target("edge/pinned", blobs[i]["digest"])).status == 200);
  }
}

TEST_CASE("a pin set larger than the disk budget stops the agent with a configuration error",
          "[integration][lifecycle]") {
  TempDir dir;
  Registry upstream(dir);
  const Image big = make_image(dir, "big", {"--layer", "2M"});
  push_image(dir, big, upstream, "edge/big:v1");
  // It may exit before it is seen listening: a plain process, not the Agent fixture.
  write_file(dir.file("pins.json"), R"({"cache": {"max_size": "1MiB", "pins": ["edge/big:v1"]}})");
  Process agent({agent_binary(), "--listen", "127.0.0.1:0", "--data-dir", dir.file("pins-data"),
                 "--upstream", upstream.url(), "--config", dir.file("pins.json")},
                dir.file("pins.log"));
  const auto status = agent.wait(30s);
  REQUIRE(status);
  CHECK(*status == 2);
  CHECK(count_lines(agent.log(),
                    {"cache.pins: the pinned images take", "more than cache.max_size"}) == 1);
}

TEST_CASE("a disk that fills up mid-download: the response goes on from memory, verified",
          "[integration][lifecycle]") {
  TempDir dir;
  SmallDisk disk(dir.file("agent-data"), 32);
  if (!disk.ok()) {
    WARN("cannot mount a tmpfs here (needs CAP_SYS_ADMIN); full-disk test skipped");
    return;
  }
  Registry upstream(dir);
  const std::string bytes = random_bytes(20 << 20, 21);
  const std::string digest = push_blob(upstream, "fill/app", bytes);
  SlowProxy slow(upstream.address(), 8 << 20);  // ~2.5 s: time to fill the disk meanwhile
  Agent agent(dir, {"--upstream", "http://" + slow.address()});
  auto pull = std::async(std::launch::async, [&] {
    return http_get(agent.address(), blob_target("fill/app", digest));
  });
  // Someone else fills the disk once the download is under way.
  REQUIRE(wait_until([&] { return recorded_partial(agent, digest) >= (2 << 20); }, 30s, 5ms));
  fill_disk(agent.data_dir() + "/filler");
  auto r = pull.get();
  CHECK(r.status == 200);
  CHECK(r.complete);
  CHECK(r.body == bytes);
  CHECK(agent.log_lines({digest, "the disk is full", "streaming it through uncached"}) == 1);
  CHECK_FALSE(agent.blob_file_exists(digest));
  fs::remove(agent.data_dir() + "/filler");
  REQUIRE(agent.stop() == 0);
  CHECK(counter(agent, "uncached_blobs") == 1);
  CHECK(counter(agent, "errors") == 0);
}
