// Agents behind a supernode: one upstream copy per site, cluster-token admission, and pulls that
// survive the supernode (unreachable, or killed mid-transfer).
#include <signal.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/slow_proxy.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;

TEST_CASE("agents behind a supernode: the upstream serves each blob once",
          "[integration][supernode]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "2M", "--layer", "1M", "--layer", "300K"});
  push_image(dir, image, upstream, "site/app:v1");
  auto supernode = start_supernode(dir, upstream.url());
  std::vector<std::unique_ptr<Agent>> agents;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(start_agent(dir, upstream.url(), supernode->address(),
                                 "agent" + std::to_string(i), token_file(dir)));
  }
  REQUIRE(pull_to_dir(dir, upstream.address(), "site/app:v1", "direct") == 0);
  std::vector<int> rcs(agents.size(), -1);
  std::vector<std::thread> pulls;
  for (std::size_t i = 0; i < agents.size(); ++i) {
    pulls.emplace_back([&, i] {
      rcs[i] = pull_to_dir(dir, agents[i]->address(), "site/app:v1", "pulled" + std::to_string(i));
    });
  }
  for (auto& t : pulls) t.join();
  for (std::size_t i = 0; i < agents.size(); ++i) {
    INFO("agent " << i);
    CHECK(rcs[i] == 0);
    CHECK(same_tree(dir.file("direct"), dir.file("pulled" + std::to_string(i))));
    CHECK(eventually(
              [&] {
                return agents[i]->log_lines({"/blobs/", "source=supernode"});
              },
              1) >= 1);
  }
  // Every blob crossed the upstream once, fetched by the supernode; no agent went direct.
  for (const auto& digest : image.blob_digests()) {
    INFO(digest);
    CHECK(upstream.agent_requests("GET", "/v2/site/app/blobs/" + digest) <= 1);
  }
  CHECK(eventually([&] { return upstream.agent_requests("GET", "/v2/site/app/blobs/"); }, 4) == 4);
}

TEST_CASE("the supernode admits cluster members only", "[integration][supernode]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "100K"});
  push_image(dir, image, upstream, "site/app:v1");
  auto supernode = start_supernode(dir, upstream.url());
  const auto anonymous = http_get(supernode->address(), "/v2/site/app/manifests/v1");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.body.find("UNAUTHORIZED") == std::string::npos);  // the OCI code is DENIED
  CHECK(anonymous.header("www-authenticate").find("Bearer") == 0);
  const auto member = http_get(supernode->address(), "/v2/site/app/manifests/v1",
                               {{"Authorization", std::string("Bearer ") + kToken}});
  CHECK(member.status == 200);

  // An agent with the wrong token: refused by the supernode, served by the registry directly.
  auto stranger = start_agent(dir, upstream.url(), supernode->address(), "stranger",
                              token_file(dir, "not-the-token"));
  REQUIRE(pull_to_dir(dir, stranger->address(), "site/app:v1", "stranger-pull") == 0);
  CHECK(eventually([&] { return stranger->log_lines({"asking the registry directly"}); }, 1) >= 1);
  // The same agent told not to go direct fails instead.
  auto strict = start_agent(dir, upstream.url(), supernode->address(), "strict",
                            token_file(dir, "not-the-token"), R"({"direct_fallback": false})");
  CHECK(http_get(strict->address(), "/v2/site/app/manifests/v1").status == 403);
}

TEST_CASE("an unreachable supernode: agents pull from the registry directly",
          "[integration][supernode]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "200K"});
  push_image(dir, image, upstream, "site/app:v1");
  auto agent = start_agent(dir, upstream.url(), "127.0.0.1:9", "agent", token_file(dir));
  REQUIRE(pull_to_dir(dir, agent->address(), "site/app:v1", "pulled") == 0);
  REQUIRE(pull_to_dir(dir, upstream.address(), "site/app:v1", "direct") == 0);
  CHECK(same_tree(dir.file("direct"), dir.file("pulled")));
}

TEST_CASE("the supernode dies mid-transfer: the download resumes from the registry",
          "[integration][supernode]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(6 << 20, 21);
  const std::string digest = push_blob(upstream, "site/blob", bytes);
  SlowProxy slow(upstream.address(), 1 << 20);  // the supernode's upstream link: 1 MiB/s
  // Agent and supernode name the registry alike ("site.test") and reach it their own ways:
  // the supernode through the slow link, the agent (when it falls back) directly.
  auto supernode =
      std::make_unique<Agent>(dir,
                              std::vector<std::string>{"--upstream", "site.test", "--registry",
                                                       "site.test=http://" + slow.address(),
                                                       "--token-file", token_file(dir)},
                              "", "supernode", supernode_binary());
  auto agent = std::make_unique<Agent>(
      dir,
      std::vector<std::string>{"--upstream", "site.test", "--registry",
                               "site.test=" + upstream.url(), "--supernode",
                               "http://" + supernode->address(), "--token-file", token_file(dir)},
      R"({"swarm": {"enabled": false}})", "agent");  // the HTTP path; the swarm's own case below
  HttpResult result;
  std::thread client([&] { result = http_get(agent->address(), "/v2/site/blob/blobs/" + digest); });
  // Wait until the agent holds part of the blob, then kill the supernode.
  const std::string tmp = agent->data_dir() + "/tmp";
  REQUIRE(wait_until(
      [&] {
        std::error_code ec;
        for (const auto& f : std::filesystem::directory_iterator(tmp, ec)) {
          if (std::filesystem::file_size(f.path(), ec) > (1u << 20)) return true;
        }
        return false;
      },
      30s));
  supernode->process().kill();
  client.join();
  CHECK(result.status == 200);
  CHECK(result.complete);
  CHECK(result.body == bytes);
  CHECK(eventually(
            [&] {
              return agent->log_lines({digest, "resuming from the next source"});
            },
            1) == 1);
  // The agent asked the registry for the rest only: a Range request, answered 206.
  CHECK(eventually(
            [&] {
              return count_lines(upstream.log(),
                                 {"\"GET /v2/site/blob/blobs/" + digest + " HTTP/1.1\" 206"});
            },
            1) == 1);
  CHECK(agent->stop() == 0);
  CHECK(agent->log_lines({"source_switches=1"}) == 1);
}

TEST_CASE("many agents revalidating a tag: the supernode asks the upstream once",
          "[integration][supernode]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "10K"});
  push_image(dir, image, upstream, "site/app:v1");
  auto supernode = start_supernode(dir, upstream.url(), R"({"cache": {"tag_ttl": "60s"}})");
  std::vector<std::unique_ptr<Agent>> agents;
  for (int i = 0; i < 3; ++i) {  // agents revalidate on every request
    agents.push_back(start_agent(dir, upstream.url(), supernode->address(),
                                 "agent" + std::to_string(i), token_file(dir),
                                 R"({"cache": {"tag_ttl": "0s"}})"));
  }
  for (int round = 0; round < 3; ++round) {
    for (auto& a : agents) {
      const auto r = http_get(a->address(), "/v2/site/app/manifests/v1");
      CHECK(r.status == 200);
      CHECK(r.header("docker-content-digest") == image.digest());
    }
  }
  // Nine agent requests, one upstream GET by tag, no HEAD: the supernode answered from its
  // cache within its tag TTL.
  CHECK(eventually([&] { return upstream.agent_requests("GET", "/v2/site/app/manifests/v1"); },
                   1) == 1);
  CHECK(upstream.agent_requests("HEAD", "/v2/site/app/manifests/v1") == 0);
}

namespace {

std::vector<int> pull_all(const TempDir& dir, std::vector<std::unique_ptr<Agent>>& agents,
                          const std::string& ref, const std::string& prefix) {
  std::vector<int> rcs(agents.size(), -1);
  std::vector<std::thread> pulls;
  for (std::size_t i = 0; i < agents.size(); ++i) {
    pulls.emplace_back([&, i] {
      rcs[i] = pull_to_dir(dir, agents[i]->address(), ref, prefix + std::to_string(i));
    });
  }
  for (auto& t : pulls) t.join();
  return rcs;
}

}  // namespace

TEST_CASE("three agents pull through the swarm at once", "[integration][supernode][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(
      dir, "img", {"--layer", "6M", "--layer", "5M", "--layer", "3M", "--layer", "300K"});
  push_image(dir, image, upstream, "site/app:v1");
  REQUIRE(pull_to_dir(dir, upstream.address(), "site/app:v1", "direct") == 0);
  auto supernode = start_supernode(dir, upstream.url(), kSmallChunks);
  std::vector<std::unique_ptr<Agent>> agents;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(start_agent(dir, upstream.url(), supernode->address(),
                                 "agent" + std::to_string(i), token_file(dir),
                                 R"({"zone": "rack-)" + std::to_string(i % 2) + R"("})"));
  }
  const auto rcs = pull_all(dir, agents, "site/app:v1", "pulled");
  for (std::size_t i = 0; i < agents.size(); ++i) {
    INFO("agent " << i << "\n" << agents[i]->log());
    CHECK(rcs[i] == 0);
    CHECK(same_tree(dir.file("direct"), dir.file("pulled" + std::to_string(i))));
    // The three big layers came through the swarm; the small blobs over HTTP.
    CHECK(eventually([&] { return agents[i]->log_lines({"/blobs/", "source=swarm"}); }, 3) == 3);
  }
  // Each blob crossed the upstream once, fetched by the supernode.
  std::uint64_t big = 0;  // bytes of the blobs the swarm carries (>= 1 MiB)
  for (const auto& blob : image.summary["blobs"]) {
    if (blob["mediaType"].get<std::string>().find("manifest") != std::string::npos) continue;
    const std::string digest = blob["digest"];
    INFO(digest);
    CHECK(upstream.agent_requests("GET", "/v2/site/app/blobs/" + digest) == 1);
    if (blob["size"].get<std::uint64_t>() >= (1u << 20)) big += blob["size"].get<std::uint64_t>();
  }
  std::uint64_t swarm_bytes = 0;
  for (auto& a : agents) {
    CHECK(a->stop() == 0);
    CHECK(counter(*a, "bytes_from_upstream") == 0);
    CHECK(counter(*a, "source_fallbacks") == 0);
    swarm_bytes += static_cast<std::uint64_t>(counter(*a, "bytes_from_swarm"));
  }
  CHECK(swarm_bytes == 3 * big);
}

TEST_CASE("a restarted agent seeds its cached blobs when a late joiner asks for them",
          "[integration][supernode][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "3M"});
  push_image(dir, image, upstream, "site/app:v1");
  REQUIRE(pull_to_dir(dir, upstream.address(), "site/app:v1", "direct") == 0);
  const std::string layer = image.summary["blobs"][0]["digest"];
  {
    auto supernode = start_supernode(dir, upstream.url(), kSmallChunks);
    auto first = start_agent(dir, upstream.url(), supernode->address(), "seeder", token_file(dir));
    REQUIRE(pull_to_dir(dir, first->address(), "site/app:v1", "first") == 0);
    CHECK(eventually([&] { return first->log_lines({layer, "source=swarm"}); }, 1) == 1);
  }
  // The supernode again, now uploading at 1 kB/s: a 256 KiB piece from it takes minutes, so a
  // new agent that gets the layer through the swarm within its stall timeout got it from the
  // restarted agent. That agent seeds nothing until the newcomer's request shows up in the
  // supernode's demand feed.
  auto supernode = start_supernode(
      dir, upstream.url(),
      R"({"swarm": {"chunk_size": 2097152, "piece_size": 262144, "upload_rate_limit": 1000}})");
  auto seeder = start_agent(dir, upstream.url(), supernode->address(), "seeder", token_file(dir));
  auto fresh = start_agent(dir, upstream.url(), supernode->address(), "fresh", token_file(dir),
                           R"({"swarm": {"stall_timeout": "5s"}})");
  CHECK(seeder->log_lines({"seeding on demand"}) == 0);
  REQUIRE(pull_to_dir(dir, fresh->address(), "site/app:v1", "fresh-pull") == 0);
  CHECK(same_tree(dir.file("direct"), dir.file("fresh-pull")));
  CHECK(eventually([&] { return fresh->log_lines({layer, "source=swarm"}); }, 1) == 1);
  CHECK(seeder->log_lines({layer, "seeding on demand (2 chunk torrents)"}) == 1);
  CHECK(fresh->stop() == 0);
  CHECK(counter(*fresh, "source_fallbacks") == 0);
  CHECK(counter(*fresh, "bytes_from_swarm") == image.summary["blobs"][0]["size"].get<long long>());
}

TEST_CASE("the supernode dies mid-swarm: pulls finish from peers, then the registry",
          "[integration][supernode][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(8 << 20, 23);
  const std::string digest = push_blob(upstream, "site/blob", bytes);
  SlowProxy slow(upstream.address(), 2 << 20);  // the supernode's upstream link: 2 MiB/s
  auto supernode =
      std::make_unique<Agent>(dir,
                              std::vector<std::string>{"--upstream", "site.test", "--registry",
                                                       "site.test=http://" + slow.address(),
                                                       "--token-file", token_file(dir)},
                              kSmallChunks, "supernode", supernode_binary());
  std::vector<std::unique_ptr<Agent>> agents;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(std::make_unique<Agent>(
        dir,
        std::vector<std::string>{"--upstream", "site.test", "--registry",
                                 "site.test=" + upstream.url(), "--supernode",
                                 "http://" + supernode->address(), "--token-file", token_file(dir)},
        R"({"swarm": {"stall_timeout": "2s"}})", "agent" + std::to_string(i)));
  }
  std::vector<HttpResult> results(agents.size());
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < agents.size(); ++i) {
    clients.emplace_back(
        [&, i] { results[i] = http_get(agents[i]->address(), "/v2/site/blob/blobs/" + digest); });
  }
  // Once the swarm has carried part of the blob, the supernode goes.
  const std::string tmp = agents[0]->data_dir() + "/tmp";
  REQUIRE(wait_until(
      [&] {
        std::error_code ec;
        for (const auto& f : std::filesystem::directory_iterator(tmp, ec)) {
          if (std::filesystem::file_size(f.path(), ec) > (3u << 20)) return true;
        }
        return false;
      },
      30s));
  supernode->process().kill();
  for (auto& c : clients) c.join();
  for (std::size_t i = 0; i < agents.size(); ++i) {
    INFO("agent " << i << "\n" << agents[i]->log());
    CHECK(results[i].status == 200);
    CHECK(results[i].complete);
    CHECK(results[i].body == bytes);
    CHECK(agents[i]->stop() == 0);
    CHECK(counter(*agents[i], "bytes_from_swarm") > 0);
    // The rest came from the registry: the supernode was gone.
    CHECK(counter(*agents[i], "bytes_from_upstream") > 0);
    CHECK(counter(*agents[i], "source_switches") >= 1);
  }
}

TEST_CASE("a peer sending corrupt pieces is banned and the others still verify",
          "[integration][supernode][swarm]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--layer", "8M"});
  push_image(dir, image, upstream, "site/app:v1");
  REQUIRE(pull_to_dir(dir, upstream.address(), "site/app:v1", "direct") == 0);
  // The supernode uploads at 1 MiB/s, so the others ask the liar for most pieces.
  auto supernode = start_supernode(
      dir, upstream.url(),
      R"({"swarm": {"chunk_size": 4194304, "piece_size": 262144, "upload_rate_limit": 1048576}})");
  ::setenv("LAYERSWARM_TESTING_CORRUPT_UPLOADS", "1", 1);
  auto liar = std::make_unique<Agent>(
      dir,
      std::vector<std::string>{"--upstream", upstream.url(), "--supernode",
                               "http://" + supernode->address(), "--token-file", token_file(dir)},
      "", "liar", testhooks_agent_binary());
  ::unsetenv("LAYERSWARM_TESTING_CORRUPT_UPLOADS");
  REQUIRE(pull_to_dir(dir, liar->address(), "site/app:v1", "liar-pull") == 0);
  std::vector<std::unique_ptr<Agent>> agents;
  for (int i = 0; i < 2; ++i) {
    agents.push_back(start_agent(dir, upstream.url(), supernode->address(),
                                 "agent" + std::to_string(i), token_file(dir)));
  }
  const auto rcs = pull_all(dir, agents, "site/app:v1", "pulled");
  int bans = 0;
  for (std::size_t i = 0; i < agents.size(); ++i) {
    INFO("agent " << i << "\n" << agents[i]->log());
    CHECK(rcs[i] == 0);
    CHECK(same_tree(dir.file("direct"), dir.file("pulled" + std::to_string(i))));
    CHECK(agents[i]->stop() == 0);
    CHECK(counter(*agents[i], "digest_mismatches") == 0);  // caught piece by piece
    bans += agents[i]->log_lines({"banned peer"});
  }
  CHECK(bans >= 1);
}
