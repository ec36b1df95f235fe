// Operations against real processes (docs/operations.md): /metrics, /healthz and /readyz on an
// agent and a supernode, the metrics listener, and a real Prometheus that scrapes both and runs
// every query of the Grafana dashboard and loads the alert rules.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/support/cluster.h"
#include "tests/support/fixtures.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The address printed by a node for its metrics listener.
std::string metrics_address(const Agent& node) {
  const std::string log = node.log();
  const std::string marker = "metrics, health and readiness on http://";
  const auto at = log.rfind(marker);
  REQUIRE(at != std::string::npos);
  const auto start = at + marker.size();
  return log.substr(start, log.find_first_of(" \n", start) - start);
}

// Runs `argv` to its end (at most 60 s, then killed: -1): its exit status and its output, kept
// in dir/<name>.
std::pair<int, std::string> run_logged(const TempDir& dir, const std::vector<std::string>& argv,
                                       const std::string& name) {
  const int status = run_command(argv, dir.file(name), 60s);
  return {status, read_file(dir.file(name))};
}

// A port nobody listens on now (Prometheus wants a fixed one).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// A metric line's value: `name{labels...}` or `name` at the start of a line; nullopt if absent.
bool has_series(const std::string& text, const std::string& prefix) {
  return text.find("\n" + prefix) != std::string::npos || text.rfind(prefix, 0) == 0;
}

const HeaderList kAccept = {{"Accept",
                             "application/vnd.oci.image.manifest.v1+json, "
                             "application/vnd.docker.distribution.manifest.v2+json"}};

}  // namespace

TEST_CASE("metrics, health and readiness on the agent and the supernode",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "app", {"--layer", "3M", "--layer", "200K"});
  push_image(dir, image, upstream, "ops/app:v1");
  const std::string token = token_file(dir);
  auto supernode = start_supernode(dir, upstream.url(),
                                   R"({"swarm": {"chunk_size": 1048576, "piece_size": 262144},
                                       "metrics_listen": "127.0.0.1:0"})");
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token,
                           R"({"metrics_listen": "127.0.0.1:0"})");
  REQUIRE(pull_to_dir(dir, agent->address(), "ops/app:v1", "pulled") == 0);

  const auto m = http_get(agent->address(), "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.header("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
  for (const char* series :
       {"layerswarm_requests_total{kind=\"manifest\"", "layerswarm_requests_total{kind=\"blob\"",
        "layerswarm_request_duration_seconds_bucket{kind=\"blob\"",
        "layerswarm_served_bytes_total{", "layerswarm_cache_bytes ",
        "layerswarm_cache_capacity_bytes ", "layerswarm_upstream_requests_total{",
        "layerswarm_digest_mismatches_total ", "layerswarm_swarm_torrents ",
        "layerswarm_swarm_peers ", "layerswarm_swarm_received_bytes_total ",
        "layerswarm_swarm_redundant_bytes_total ", "layerswarm_cache_writable 1"}) {
    INFO(series);
    CHECK(has_series(m.body, series));
  }
  // The supernode wants its token for /metrics on its own listener, not for the probes.
  CHECK(http_get(supernode->address(), "/metrics").status == 401);
  CHECK(http_get(supernode->address(), "/healthz").status == 200);
  CHECK(http_get(supernode->address(), "/readyz").status == 200);
  const auto sm = http_get(supernode->address(), "/metrics",
                           {{"Authorization", std::string("Bearer ") + kToken}});
  REQUIRE(sm.status == 200);
  CHECK(has_series(sm.body, "layerswarm_tracker_announces_total "));
  CHECK(has_series(sm.body, "layerswarm_agents 1"));
  // The metrics listeners serve the operational endpoints only, without a token.
  const std::string agent_metrics = metrics_address(*agent);
  const std::string sn_metrics = metrics_address(*supernode);
  CHECK(http_get(sn_metrics, "/metrics").status == 200);
  CHECK(http_get(agent_metrics, "/healthz").body == "ok\n");
  CHECK(http_get(agent_metrics, "/readyz").status == 200);
  CHECK(http_get(agent_metrics, "/v2/").status == 404);
  CHECK(http_get(agent->address(), "/healthz").status == 200);
}

TEST_CASE("a real Prometheus scrapes both, runs every dashboard query and loads the alerts",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "app", {"--layer", "3M"});
  push_image(dir, image, upstream, "ops/app:v1");
  const std::string token = token_file(dir);
  auto supernode = start_supernode(dir, upstream.url(),
                                   R"({"swarm": {"chunk_size": 1048576, "piece_size": 262144}})");
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token,
                           R"({"metrics_listen": "127.0.0.1:0"})");
  REQUIRE(pull_to_dir(dir, agent->address(), "ops/app:v1", "pulled") == 0);

  const int port = free_port();
  const std::string prom = "127.0.0.1:" + std::to_string(port);
  write_file(
      dir.file("prometheus.yml"),
      "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      "rule_files:\n  - " +
          source_dir() +
          "/packaging/prometheus/alerts.yml\n"
          "scrape_configs:\n"
          "  - job_name: layerswarm-agent\n    static_configs:\n      - targets: ['" +
          metrics_address(*agent) +
          "']\n"
          "  - job_name: layerswarm-supernode\n    authorization:\n      credentials_file: " +
          token + "\n    static_configs:\n      - targets: ['" + supernode->address() + "']\n");
  Process prometheus({"prometheus", "--config.file=" + dir.file("prometheus.yml"),
                      "--storage.tsdb.path=" + dir.file("prom-data"),
                      "--web.listen-address=" + prom, "--log.level=warn"},
                     dir.file("prometheus.log"));
  auto query = [&](const std::string& q) {
    const auto r = http_get(prom, "/api/v1/query?query=" + url_encode(q));
    return r.status == 200 ? json::parse(r.body, nullptr, false) : json();
  };
  // Both targets up, and two scrapes of each (rate() needs two samples).
  REQUIRE(wait_until(
      [&] {
        auto value = [&](const std::string& q) {
          const json r = query(q);
          if (!r.is_object() || r["status"] != "success" || r["data"]["result"].empty()) {
            return std::string();
          }
          return r["data"]["result"][0]["value"][1].get<std::string>();
        };
        return value("sum(up{job=~\"layerswarm-.*\"})") == "2" &&
               value("min(count_over_time(up{job=~\"layerswarm-.*\"}[1m])) >= 3") != "";
      },
      60s, 200ms));
  // Traffic between two scrapes, so rates are not all zero.
  REQUIRE(http_get(agent->address(), "/v2/ops/app/manifests/v1", kAccept).status == 200);

  const json dashboard =
      json::parse(read_file(source_dir() + "/packaging/grafana/layerswarm.json"), nullptr, false);
  REQUIRE(dashboard.is_object());
  int queries = 0;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      std::string expr = target["expr"];
      for (std::size_t at = expr.find("$instance"); at != std::string::npos;
           at = expr.find("$instance")) {
        expr.replace(at, 9, ".*");
      }
      INFO(panel["title"].get<std::string>() << ": " << expr);
      const json r = query(expr);
      REQUIRE(r.is_object());
      CHECK(r["status"] == "success");
      ++queries;
    }
  }
  CHECK(queries >= 14);
  // The series every panel of a healthy site draws from are there.
  for (const char* q : {"layerswarm_requests_total", "layerswarm_request_duration_seconds_bucket",
                        "layerswarm_served_bytes_total", "layerswarm_cache_bytes",
                        "layerswarm_upstream_requests_total", "layerswarm_swarm_torrents",
                        "layerswarm_tracker_announces_total", "layerswarm_agents"}) {
    INFO(q);
    const json r = query(q);
    REQUIRE(r.is_object());
    CHECK_FALSE(r["data"]["result"].empty());
  }
  // The alert rules load and evaluate against these series.
  const auto rules = http_get(prom, "/api/v1/rules");
  REQUIRE(rules.status == 200);
  const json groups = json::parse(rules.body)["data"]["groups"];
  REQUIRE(groups.size() == 1);
  CHECK(groups[0]["rules"].size() == 9);
  CHECK(wait_until(
      [&] {
        const json g = json::parse(http_get(prom, "/api/v1/rules").body)["data"]["groups"];
        for (const auto& rule : g[0]["rules"]) {
          if (rule["health"] != "ok") return false;
        }
        return true;
      },
      20s, 200ms));
}

TEST_CASE("agents register with the supernode, and the layerswarm CLI shows both",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string token = token_file(dir);
  auto supernode = start_supernode(dir, upstream.url());
  auto a = start_agent(dir, upstream.url(), supernode->address(), "a", token,
                       R"({"zone": "rack-1", "cache": {"max_size": "64MiB"}})");
  auto b =
      start_agent(dir, upstream.url(), supernode->address(), "b", token, R"({"zone": "rack-2"})");
  const HeaderList auth = {{"Authorization", std::string("Bearer ") + kToken}};
  json agents;
  REQUIRE(wait_until(
      [&] {
        const auto r = http_get(supernode->address(), "/api/v1/agents", auth);
        agents = json::parse(r.body, nullptr, false);
        return r.status == 200 && agents.is_array() && agents.size() == 2;
      },
      20s, 50ms));
  CHECK(agents[0]["zone"] == "rack-1");
  CHECK(agents[0]["address"] == a->address());
  CHECK(agents[0]["cache_capacity"] == 64u << 20);
  CHECK(agents[1]["zone"] == "rack-2");
  CHECK(agents[1]["address"] == b->address());
  CHECK(agents[1]["version"].get<std::string>().size() > 0);
  // Without the token: nothing; a bad registration: 400 naming the field.
  CHECK(http_get(supernode->address(), "/api/v1/agents").status == 401);
  CHECK(http_request(supernode->address(), "POST", "/api/v1/agents?id=x&port=99999", auth).status ==
        400);

  // The CLI against an agent, then against the supernode with its token.
  const auto run = [&](const std::vector<std::string>& args, const std::string& name) {
    std::vector<std::string> argv = {cli_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_logged(dir, argv, name + ".out");
  };
  const auto [agent_status, agent_out] =
      run({"--server", "http://" + a->address(), "status"}, "s1");
  CHECK(agent_status == 0);
  CHECK(count_lines(agent_out, {"agent", "up"}) >= 1);
  CHECK(count_lines(agent_out, {"cache", "of 64.0 MiB"}) == 1);
  const auto [sn_status, sn_out] =
      run({"--server", "http://" + supernode->address(), "--token-file", token, "status"}, "s2");
  CHECK(sn_status == 0);
  CHECK(count_lines(sn_out, {"agents", "2 known"}) == 1);
  CHECK(count_lines(sn_out, {"rack-1", a->address()}) == 1);
  const auto [refused, refused_out] =
      run({"--server", "http://" + supernode->address(), "agents"}, "s3");
  CHECK(refused == 1);
  CHECK(count_lines(refused_out, {"401"}) == 1);
  const auto [bad, bad_out] = run({"--server", "ftp://x", "status"}, "s4");
  CHECK(bad == 2);
}

TEST_CASE("preheat: fetched once, pulled by the agents of one zone, followed by the CLI",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "app", {"--layer", "3M", "--layer", "2M"});
  push_image(dir, image, upstream, "ops/app:v1");
  const std::string token = token_file(dir);
  auto supernode = start_supernode(dir, upstream.url(), kSmallChunks);
  auto a =
      start_agent(dir, upstream.url(), supernode->address(), "a", token, R"({"zone": "rack-1"})");
  auto b =
      start_agent(dir, upstream.url(), supernode->address(), "b", token, R"({"zone": "rack-1"})");
  auto c =
      start_agent(dir, upstream.url(), supernode->address(), "c", token, R"({"zone": "rack-2"})");
  const HeaderList auth = {{"Authorization", std::string("Bearer ") + kToken}};
  REQUIRE(wait_until(
      [&] {
        const auto r = http_get(supernode->address(), "/api/v1/agents", auth);
        const json j = json::parse(r.body, nullptr, false);
        return j.is_array() && j.size() == 3;
      },
      20s, 50ms));

  Process cli({cli_binary(), "--server", "http://" + supernode->address(), "--token-file", token,
               "preheat", "ops/app:v1", "--zone", "rack-1", "--wait"},
              dir.file("preheat.out"));
  const auto status = cli.wait(120s);
  const std::string out = read_file(dir.file("preheat.out"));
  INFO(out);
  REQUIRE(status);
  CHECK(*status == 0);
  CHECK(count_lines(out, {"preheat", "done, 2/2 agents done"}) == 1);
  // rack-1's agents hold every blob; rack-2's holds none; the upstream sent each blob once.
  for (const auto& blob : image.summary["blobs"]) {
    const std::string digest = blob["digest"];
    if (blob["mediaType"].get<std::string>().find("manifest") != std::string::npos) continue;
    INFO(digest);
    CHECK(wait_until([&] { return a->blob_file_exists(digest) && b->blob_file_exists(digest); },
                     10s));
    CHECK_FALSE(c->blob_file_exists(digest));
    CHECK(upstream.requests("GET", "/v2/ops/app/blobs/" + digest) == 1);
  }
  // A pull afterwards is served from the cache.
  REQUIRE(pull_to_dir(dir, a->address(), "ops/app:v1", "after") == 0);
  CHECK(eventually([&] { return a->log_lines({"source=cache", "blobs/"}); }, 2) >= 2);
  // Bad requests are refused with the field named.
  const auto bad = http_request(supernode->address(), "POST", "/api/v1/preheat?image=UPPER", auth);
  CHECK(bad.status == 400);
  CHECK(http_get(supernode->address(), "/api/v1/preheat/nope", auth).status == 404);
  // Only the supernode (holding the token) may ask an agent to pull.
  CHECK(http_request(a->address(), "POST", "/api/v1/pull?job=x&image=ops/app:v1").status == 403);
}

namespace {

// Headless Chromium (Debian's) loading `url`; its DOM after the page's scripts ran (and a
// screenshot when `screenshot` is set). Empty when Chromium is missing or failed.
std::string chromium_dom(const TempDir& dir, const std::string& url, const std::string& name,
                         const std::string& screenshot = "") {
  std::vector<std::string> argv = {"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--no-first-run",
                                   "--user-data-dir=" + dir.file(name + ".profile"),
                                   // page scripts run until 10 s of virtual time passed
                                   "--virtual-time-budget=10000"};
  if (!screenshot.empty()) {
    argv.insert(argv.end(),
                {"--window-size=1400,1000", "--hide-scrollbars", "--screenshot=" + screenshot});
  } else {
    argv.push_back("--dump-dom");
  }
  argv.push_back(url);
  Process chromium(argv, dir.file(name + ".out"));
  const auto status = chromium.wait(90s);
  if (!status || *status != 0) return "";
  return read_file(dir.file(name + ".out"));
}

}  // namespace

TEST_CASE("the supernode's status page in headless Chromium: agents by zone, health, preheats",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "app", {"--layer", "3M", "--layer", "2M"});
  push_image(dir, image, upstream, "ops/app:v1");
  const std::string token = token_file(dir);
  write_file(dir.file("admin"), "admin-password-for-tests\n");
  auto supernode = start_supernode(
      dir, upstream.url(),
      R"({"swarm": {"chunk_size": 2097152, "piece_size": 262144}, "admin_password_file": ")" +
          dir.file("admin") + "\"}");
  auto a =
      start_agent(dir, upstream.url(), supernode->address(), "a", token, R"({"zone": "rack-1"})");
  auto b =
      start_agent(dir, upstream.url(), supernode->address(), "b", token, R"({"zone": "rack-1"})");
  auto c =
      start_agent(dir, upstream.url(), supernode->address(), "c", token, R"({"zone": "rack-2"})");
  const HeaderList auth = {{"Authorization", std::string("Bearer ") + kToken}};
  const HeaderList admin = {{"Authorization", "Bearer admin-password-for-tests"}};
  // A preheat to rack-1, then a client pull through c: bytes from the swarm and the supernode.
  REQUIRE(wait_until(
      [&] {
        const json j = json::parse(http_get(supernode->address(), "/api/v1/agents", auth).body,
                                   nullptr, false);
        return j.is_array() && j.size() == 3;
      },
      20s, 50ms));
  const auto started = http_request(supernode->address(), "POST",
                                    "/api/v1/preheat?image=ops/app:v1&zone=rack-1", auth);
  REQUIRE(started.status == 202);
  const std::string id = json::parse(started.body)["id"];
  REQUIRE(wait_until(
      [&] {
        const json j = json::parse(
            http_get(supernode->address(), "/api/v1/preheat/" + id, auth).body, nullptr, false);
        return j.is_object() && j["state"] == "done";
      },
      60s, 100ms));
  REQUIRE(pull_to_dir(dir, c->address(), "ops/app:v1", "c") == 0);
  // The agents report their bytes by source with their next registration (every 30 s).
  json agents;
  REQUIRE(wait_until(
      [&] {
        agents = json::parse(http_get(supernode->address(), "/api/v1/agents", auth).body, nullptr,
                             false);
        for (const auto& x : agents) {
          if (x["zone"] == "rack-2" && x["from_swarm"].get<long long>() > 0) return true;
        }
        return false;
      },
      45s, 200ms));
  for (const auto& x : agents) {
    CHECK(x["writable"] == true);
    CHECK(x["errors"] == 0);
    CHECK(x.contains("from_cache"));
  }
  // GET /api/v1/preheat lists the preheats.
  const json preheats =
      json::parse(http_get(supernode->address(), "/api/v1/preheat", auth).body, nullptr, false);
  REQUIRE(preheats.is_array());
  CHECK(preheats.size() == 1);

  // The admin password reads the state, nothing else.
  CHECK(http_get(supernode->address(), "/api/v1/agents", admin).status == 200);
  CHECK(http_get(supernode->address(), "/api/v1/status", admin).status == 200);
  CHECK(http_get(supernode->address(), "/metrics", admin).status == 200);
  CHECK(http_request(supernode->address(), "POST", "/api/v1/preheat?image=ops/app:v1", admin)
            .status == 401);
  CHECK(http_get(supernode->address(), "/v2/ops/app/manifests/v1", admin).status == 401);
  CHECK(http_get(supernode->address(), "/v2/ops/app/manifests/v1").status == 401);
  // The page itself carries no data and no token; it is served with a strict policy.
  const auto page = http_get(supernode->address(), "/ui");
  CHECK(page.status == 200);
  CHECK(page.body.find("<title>layerswarm supernode</title>") != std::string::npos);
  CHECK(page.body.find(kToken) == std::string::npos);
  CHECK(page.header("content-security-policy").find("default-src 'none'") != std::string::npos);

  // Chromium renders it with the token, and with the admin password.
  const std::string base = "http://" + supernode->address() + "/ui";
  const std::string dom = chromium_dom(dir, base + "#token=" + kToken, "token");
  if (dom.empty()) {
    FAIL("chromium failed: " << read_file(dir.file("token.out")));
  }
  INFO(dom.substr(0, 4000));
  CHECK(dom.find("data-state=\"ready\"") != std::string::npos);
  CHECK(dom.find("zone rack-1 · 2 agents") != std::string::npos);
  CHECK(dom.find("zone rack-2 · 1 agents") != std::string::npos);
  for (const auto* agent : {a.get(), b.get(), c.get()}) {
    CHECK(dom.find(agent->address()) != std::string::npos);
  }
  CHECK(dom.find(">healthy<") != std::string::npos);
  CHECK(dom.find("ops/app:v1") != std::string::npos);              // the preheat
  CHECK(dom.find(">done<") != std::string::npos);                  // its state
  CHECK(dom.find("2/2") != std::string::npos);                     // its agents
  CHECK(dom.find(upstream.url().substr(7)) != std::string::npos);  // the upstream's row
  CHECK(dom.find(R"(<div id="error" style="display: none;">)") != std::string::npos);
  const std::string as_admin = chromium_dom(dir, base + "#token=admin-password-for-tests", "admin");
  CHECK(as_admin.find("data-state=\"ready\"") != std::string::npos);
  const std::string wrong = chromium_dom(dir, base + "#token=wrong", "wrong");
  CHECK(wrong.find("data-state=\"login\"") != std::string::npos);
  CHECK(wrong.find("zone rack-1") == std::string::npos);

  // A screenshot (docs/status-page.png is one; LS_STATUS_PAGE_SCREENSHOT=FILE writes another).
  const char* keep = std::getenv("LS_STATUS_PAGE_SCREENSHOT");
  const std::string shot = keep ? std::string(keep) : dir.file("status-page.png");
  chromium_dom(dir, base + "#token=" + kToken, "shot", shot);
  CHECK(read_file(shot).size() > 10'000);
}

TEST_CASE("layerswarm cache ls, rm, pin and unpin against a running agent",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image one = make_image(dir, "one", {"--busybox", "/bin/busybox", "--layer", "1M"});
  const Image two = make_image(dir, "two", {"--busybox", "/bin/busybox", "--layer", "1M"});
  push_image(dir, one, upstream, "team/one:v1");
  push_image(dir, two, upstream, "team/two:v1");
  auto blobs_of = [](const Image& image) {
    std::set<std::string> out;
    for (const auto& b : image.summary["blobs"]) {
      if (b["mediaType"].get<std::string>().find("manifest") == std::string::npos) {
        out.insert(b["digest"].get<std::string>());
      }
    }
    return out;
  };
  const auto blobs_one = blobs_of(one), blobs_two = blobs_of(two);
  std::set<std::string> shared;
  for (const auto& d : blobs_one) {
    if (blobs_two.count(d)) shared.insert(d);
  }
  REQUIRE(shared.size() == 1);  // the busybox layer

  Agent agent(dir, {"--upstream", upstream.url()});
  REQUIRE(pull_to_dir(dir, agent.address(), "team/one:v1", "pull-one") == 0);
  REQUIRE(pull_to_dir(dir, agent.address(), "team/two:v1", "pull-two") == 0);
  int runs = 0;
  const auto cli = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {cli_binary(), "--server", "http://" + agent.address(),
                                     "cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_logged(dir, argv, "cache" + std::to_string(++runs) + ".out");
  };

  auto [ls_status, ls] = cli({"ls"});
  INFO(ls);
  CHECK(ls_status == 0);
  CHECK(count_lines(ls, {"/team/one:v1", "3/3"}) == 1);
  CHECK(count_lines(ls, {"/team/two:v1", "3/3"}) == 1);
  CHECK(count_lines(ls, {"2 images"}) == 1);

  // rm: one's own blobs go, the layer two shares stays, two is untouched.
  auto [rm_status, rm] = cli({"rm", "team/one:v1"});
  INFO(rm);
  CHECK(rm_status == 0);
  CHECK(count_lines(rm, {"removed", "1 shared with other cached images kept"}) == 1);
  for (const auto& d : blobs_one) CHECK(agent.blob_file_exists(d) == (shared.count(d) > 0));
  for (const auto& d : blobs_two) CHECK(agent.blob_file_exists(d));
  auto [ls2_status, ls2] = cli({"ls"});
  CHECK(count_lines(ls2, {"team/one:v1"}) == 0);
  CHECK(count_lines(ls2, {"1 images"}) == 1);
  CHECK(cli({"rm", "team/one:v1"}).first == 1);  // not cached any more

  // pin: fetched at once, kept, refused by rm, remembered across a restart.
  auto [pin_status, pin] = cli({"pin", "team/one:v1"});
  INFO(pin);
  CHECK(pin_status == 0);
  CHECK(wait_until(
      [&] {
        for (const auto& d : blobs_one) {
          if (!agent.blob_file_exists(d)) return false;
        }
        return true;
      },
      30s));
  auto [rm_pinned_status, rm_pinned] = cli({"rm", "team/one:v1"});
  CHECK(rm_pinned_status == 1);
  CHECK(count_lines(rm_pinned, {"pinned"}) == 1);
  agent.stop();
  agent.start();
  auto [ls3_status, ls3] = cli({"ls"});
  INFO(ls3);
  CHECK(count_lines(ls3, {"pin:", "team/one:v1"}) == 1);
  CHECK(count_lines(ls3, {"/team/one:v1", "yes"}) == 1);
  // unpin, then rm works; a second unpin is an error.
  CHECK(cli({"unpin", "team/one:v1"}).first == 0);
  CHECK(cli({"unpin", "team/one:v1"}).first == 1);
  CHECK(wait_until([&] { return cli({"rm", "team/one:v1"}).first == 0; }, 20s, 200ms));
  // A bad reference and an unknown action are errors with a message.
  CHECK(cli({"pin", "UPPER/case"}).first == 1);
  CHECK(cli({"frobnicate"}).first == 2);
  CHECK(http_request(agent.address(), "PUT", "/api/v1/cache/pins?image=x").status == 405);
  // What a web page in the host's browser could send: refused.
  CHECK(http_request(agent.address(), "POST", "/api/v1/cache/pins?image=team/two:v1",
                     {{"Origin", "http://evil.example"}})
            .status == 403);
}

TEST_CASE("layerswarm export writes an OCI layout and a docker archive that skopeo reads",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "multi",
                                 {"--busybox", "/bin/busybox", "--layer", "1M", "--platform",
                                  "linux/amd64", "--platform", "linux/arm64"});
  push_image(dir, image, upstream, "team/app:v1", {"--all"});
  Agent agent(dir, {"--upstream", upstream.url()});
  int runs = 0;
  const auto cli = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {cli_binary(), "--server", "http://" + agent.address(),
                                     "export"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_logged(dir, argv, "export" + std::to_string(++runs) + ".out");
  };
  // OCI layout of the arm64 image: skopeo inspects it and copies it (verifying every blob).
  const std::string layout = dir.file("app-oci");
  auto [oci_status, oci_out] =
      cli({"team/app:v1", "--format", "oci", "--platform", "linux/arm64", "-o", layout});
  INFO(oci_out);
  REQUIRE(oci_status == 0);
  const auto inspect = [&](const std::string& ref, const std::string& name) {
    const int status = run_command({"skopeo", "--insecure-policy", "inspect", ref}, dir.file(name));
    CHECK(status == 0);
    return json::parse(read_file(dir.file(name)), nullptr, false);
  };
  const json config = inspect("oci:" + layout + ":v1", "inspect-oci.json");
  CHECK(config.value("Architecture", "") == "arm64");
  CHECK(skopeo(dir, {"copy", "oci:" + layout + ":v1", "dir:" + dir.file("from-oci")}) == 0);
  // A docker load archive (default platform linux/amd64): skopeo reads it as docker-archive.
  const std::string archive = dir.file("app.tar");
  auto [docker_status, docker_out] = cli({"team/app:v1", "-o", archive});
  INFO(docker_out);
  REQUIRE(docker_status == 0);
  const json inspected = inspect("docker-archive:" + archive, "inspect-docker.json");
  CHECK(inspected.value("Architecture", "") == "amd64");
  // docker load tags it as docker save would have.
  REQUIRE(run_command({"tar", "-xOf", archive, "manifest.json"}, dir.file("manifest.json")) == 0);
  const json saved = json::parse(read_file(dir.file("manifest.json")), nullptr, false);
  REQUIRE(saved.is_array());
  CHECK(saved[0]["RepoTags"][0] == "team/app:v1");  // named as the export was asked
  CHECK(saved[0]["Layers"].size() == 2);
  CHECK(skopeo(dir, {"copy", "docker-archive:" + archive,
                     "oci:" + dir.file("from-docker") + ":v1"}) == 0);
  // Errors: an image the upstream lacks leaves no file; an existing layout is not overwritten.
  auto [missing, missing_out] = cli({"team/none:v1", "-o", dir.file("none.tar")});
  CHECK(missing == 1);
  CHECK(count_lines(missing_out, {"404"}) == 1);
  CHECK_FALSE(std::filesystem::exists(dir.file("none.tar")));
  CHECK_FALSE(std::filesystem::exists(dir.file("none.tar.part")));
  CHECK(cli({"team/app:v1", "--format", "oci", "-o", layout}).first == 1);
  CHECK(cli({"team/app:v1", "--format", "zip", "-o", archive}).first == 2);
}

TEST_CASE("copies that stay: K copies per zone, made again when a copy goes",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "app", {"--layer", "2M", "--layer", "1M"});
  push_image(dir, image, upstream, "ops/app:v1");
  const std::string token = token_file(dir);
  auto supernode = start_supernode(
      dir, upstream.url(),
      R"({"swarm": {"chunk_size": 2097152, "piece_size": 262144}, "copy_rule_interval": "1s"})");
  std::vector<std::unique_ptr<Agent>> rack1;
  for (const char* name : {"a", "b", "c"}) {
    rack1.push_back(start_agent(dir, upstream.url(), supernode->address(), name, token,
                                R"({"zone": "rack-1"})"));
  }
  auto d =
      start_agent(dir, upstream.url(), supernode->address(), "d", token, R"({"zone": "rack-2"})");
  const HeaderList auth = {{"Authorization", std::string("Bearer ") + kToken}};
  REQUIRE(wait_until(
      [&] {
        const json j = json::parse(http_get(supernode->address(), "/api/v1/agents", auth).body,
                                   nullptr, false);
        return j.is_array() && j.size() == 4;
      },
      20s, 50ms));
  std::vector<std::string> blobs;
  for (const auto& b : image.summary["blobs"]) {
    if (b["mediaType"].get<std::string>().find("manifest") == std::string::npos) {
      blobs.push_back(b["digest"]);
    }
  }
  const auto holds = [&](const Agent& agent) {
    return std::all_of(blobs.begin(), blobs.end(),
                       [&](const std::string& b) { return agent.blob_file_exists(b); });
  };
  const auto holders = [&] {
    return std::count_if(rack1.begin(), rack1.end(), [&](const auto& a) { return holds(*a); });
  };
  const auto copies_held = [&] {
    const json j =
        json::parse(http_get(supernode->address(), "/api/v1/copies", auth).body, nullptr, false);
    return j.is_array() && j.size() == 1
               ? j[0]["zones"].value("rack-1", json::object()).value("holders", -1)
               : -1;
  };

  Process add({cli_binary(), "--server", "http://" + supernode->address(), "--token-file", token,
               "copies", "add", "ops/app:v1", "--copies", "2", "--zone", "rack-1"},
              dir.file("copies-add.out"));
  REQUIRE(add.wait(30s) == 0);
  // Two of rack-1's three agents get it (no more), rack-2's none; the check sees both.
  REQUIRE(wait_until([&] { return holders() >= 2 && copies_held() == 2; }, 60s, 200ms));
  CHECK(holders() == 2);
  CHECK_FALSE(holds(*d));
  // A copy goes (removed from one holder's cache): the rule makes a second one again.
  Agent* gone = nullptr;
  for (auto& a : rack1) {
    if (holds(*a)) gone = a.get();
  }
  REQUIRE(gone != nullptr);
  REQUIRE(http_request(gone->address(), "DELETE", "/api/v1/cache/images?image=ops/app:v1").status ==
          200);
  CHECK(holders() == 1);
  CHECK(wait_until([&] { return holders() == 2; }, 60s, 200ms));
  CHECK(upstream.requests("GET", "/v2/ops/app/blobs/" + blobs[0]) == 1);  // once, for the site
  Process ls({cli_binary(), "--server", "http://" + supernode->address(), "--token-file", token,
              "copies", "ls"},
             dir.file("copies-ls.out"));
  const auto ls_status = ls.wait(30s);
  const std::string listed = read_file(dir.file("copies-ls.out"));
  INFO(listed);
  REQUIRE(ls_status == 0);
  CHECK(count_lines(listed, {"ops/app:v1", "2", "rack-1"}) == 1);
  // Bad rules are refused naming the field; a rule can be dropped.
  CHECK(http_request(supernode->address(), "POST", "/api/v1/copies?image=ops/app:v1&copies=0", auth)
            .status == 400);
  const json rules =
      json::parse(http_get(supernode->address(), "/api/v1/copies", auth).body, nullptr, false);
  const std::string id = rules[0]["id"];
  CHECK(http_request(supernode->address(), "DELETE", "/api/v1/copies/" + id, auth).status == 204);
  CHECK(http_request(supernode->address(), "DELETE", "/api/v1/copies/" + id, auth).status == 404);
}

TEST_CASE("an export imported into a stopped agent is pulled from it with the upstream gone",
          "[integration][operations]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "img", {"--busybox", "/bin/busybox", "--layer", "1M"});
  push_image(dir, image, upstream, "team/app:v1");
  Agent a(dir, {"--upstream", upstream.url()}, "", "a");
  const auto run = [&](const std::vector<std::string>& argv, const std::string& name) {
    return run_logged(dir, argv, name);
  };
  const std::string layout = dir.file("app-oci"), archive = dir.file("app.tar");
  REQUIRE(run({cli_binary(), "--server", "http://" + a.address(), "export", "team/app:v1",
               "--format", "oci", "-o", layout},
              "export-oci.out")
              .first == 0);
  REQUIRE(run({cli_binary(), "--server", "http://" + a.address(), "export", "team/app:v1", "-o",
               archive},
              "export-docker.out")
              .first == 0);
  REQUIRE(pull_to_dir(dir, a.address(), "team/app:v1", "from-a") == 0);

  // Agents whose upstream is gone (nothing listens there), filled while stopped.
  const std::vector<std::string> offline = {"--upstream", "http://127.0.0.1:9"};
  Agent b(dir, offline, "", "b");
  Agent c(dir, offline, "", "c");
  const auto import = [&](Agent& agent, const std::vector<std::string>& args,
                          const std::string& name) {
    std::vector<std::string> argv = {agent_binary(), "--data-dir",         agent.data_dir(),
                                     "--upstream",   "http://127.0.0.1:9", "import"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, name);
  };
  // A running agent holds its cache: the import says so.
  auto [busy, busy_out] = import(b, {layout}, "import-busy.out");
  CHECK(busy == 1);
  CHECK(count_lines(busy_out, {"stop it first"}) == 1);
  b.stop();
  c.stop();
  auto [oci_status, oci_out] = import(b, {layout, "--pin"}, "import-oci.out");
  INFO(oci_out);
  REQUIRE(oci_status == 0);
  CHECK(count_lines(oci_out, {"imported", "team/app:v1"}) == 1);
  // The docker archive through the CLI (`layerswarm import`, which runs the agent's binary
  // with the agent's configuration file).
  write_file(dir.file("c.json"), R"({"upstream": "http://127.0.0.1:9"})");
  const std::string agent_dir = agent_binary().substr(0, agent_binary().rfind('/'));
  auto [docker_status, docker_out] =
      run({"env", "PATH=" + agent_dir + ":" + std::getenv("PATH"), cli_binary(), "import", archive,
           "--config", dir.file("c.json"), "--data-dir", c.data_dir()},
          "import-docker.out");
  INFO(docker_out);
  REQUIRE(docker_status == 0);
  b.start();
  c.start();
  // The OCI layout keeps the manifest: the same image, byte for byte; the docker archive's
  // image has a manifest made from its config and layers (the same layers).
  REQUIRE(pull_to_dir(dir, b.address(), "team/app:v1", "from-b") == 0);
  CHECK(read_file(dir.file("from-b") + "/manifest.json") ==
        read_file(dir.file("from-a") + "/manifest.json"));
  REQUIRE(pull_to_dir(dir, c.address(), "team/app:v1", "from-c") == 0);
  // --pin made it a run-time pin.
  const json listed = json::parse(http_get(b.address(), "/api/v1/cache").body, nullptr, false);
  REQUIRE(listed.is_object());
  CHECK(listed["pins"].dump().find("team/app:v1") != std::string::npos);

  // A damaged archive is refused and tags nothing (into an agent that lacks those blobs: one
  // that has them keeps its own verified copies and reads nothing from the archive).
  Agent e(dir, offline, "", "e");
  e.stop();
  const std::string damaged = dir.file("damaged-oci");
  std::filesystem::copy(layout, damaged, std::filesystem::copy_options::recursive);
  std::string biggest;
  std::uintmax_t size = 0;
  for (const auto& f : std::filesystem::directory_iterator(damaged + "/blobs/sha256")) {
    if (f.file_size() > size) size = f.file_size(), biggest = f.path();
  }
  std::string bytes = read_file(biggest);
  bytes[bytes.size() / 2] ^= 0x01;
  write_file(biggest, bytes);
  auto [bad, bad_out] = import(e, {damaged, "--as", "team/other:v1"}, "import-bad.out");
  CHECK(bad == 1);
  CHECK(count_lines(bad_out, {"does not verify"}) == 1);
  e.start();
  CHECK(http_get(e.address(), "/v2/team/other/manifests/v1").status >= 400);
}
