// Trust (docs/security.md), with real processes: a closed site's swarm exchanges pieces with
// members only, over TLS; an outsider holding a chunk's metainfo (a plain libtorrent client,
// tests/tools/outsider.py) gets nothing from the supernode or an agent, while the same outsider
// downloads the chunk from an open site (the control that shows the probe works); a capture of
// the peer connections (tcpdump) holds none of the blob's bytes in a closed site and most of
// them in an open one; the control plane is https only and the token shows up in no log line,
// even at debug.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <optional>

#include "tests/support/cluster.h"

using namespace layerswarm::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kMiBChunks = R"("swarm": {"chunk_size": 1048576, "piece_size": 262144})";

struct Site {
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
  std::string token_file() const { return dir + "/token"; }
  std::string token() const {
    std::string t = read_file(token_file());
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    return t;
  }
};

Site init_site(const TempDir& dir) {
  Site site{dir.file("site")};
  const int rc = run_command({supernode_binary(), "init-site", "--dir", site.dir, "--ip",
                              "127.0.0.1", "--name", "localhost"},
                             dir.file("init-site.log"));
  REQUIRE(rc == 0);
  return site;
}

std::unique_ptr<Agent> closed_supernode(const TempDir& dir, const Site& site,
                                        const std::string& upstream) {
  const std::string config =
      std::string("{") + kMiBChunks + R"(, "tls": {"listen": "127.0.0.1:0", "cert": ")" + site.dir +
      R"(/supernode.pem", "key": ")" + site.dir + R"(/supernode.key"}, "site": {"ca_cert": ")" +
      site.ca() + R"(", "ca_key": ")" + site.dir + R"(/ca.key"}})";
  return std::make_unique<Agent>(
      dir,
      std::vector<std::string>{"--upstream", upstream, "--token-file", site.token_file(),
                               "--log-level", "debug"},
      config, "supernode", supernode_binary());
}

std::unique_ptr<Agent> closed_agent(const TempDir& dir, const Site& site,
                                    const std::string& upstream, const Agent& supernode,
                                    const std::string& name) {
  const std::string config =
      R"({"supernode_ca_file": ")" + site.ca() + R"(", "swarm": {"min_blob_size": 0}})";
  return std::make_unique<Agent>(
      dir,
      std::vector<std::string>{"--upstream", upstream, "--supernode",
                               "https://" + supernode.tls_address(), "--token-file",
                               site.token_file(), "--log-level", "debug"},
      config, name);
}

int p2p_port(const Agent& agent) {
  const std::string log = agent.log();
  const std::string needle = "BitTorrent on port ";
  const auto at = log.find(needle);
  return at == std::string::npos ? 0 : std::stoi(log.substr(at + needle.size()));
}

// curl with the token; the answer's body to `out`, its head to `out`.head. Returns curl's status.
int curl_get(const TempDir& dir, const std::string& url, const std::string& token,
             const std::string& ca, const std::string& out) {
  std::vector<std::string> argv = {"curl", "-sS",         "-o", out,
                                   "-D",   out + ".head", "-H", "Authorization: Bearer " + token};
  if (!ca.empty()) {
    argv.push_back("--cacert");
    argv.push_back(ca);
  }
  argv.push_back(url);
  return run_command(argv, dir.file("curl.log"));
}

// The value of header `name` in a curl -D file, "" when absent.
std::string header(const std::string& head_file, const std::string& name) {
  const std::string text = read_file(head_file);
  std::string lower;
  for (char c : text)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  std::string key = name + ":";
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto at = lower.find(key);
  if (at == std::string::npos) return "";
  const auto end = text.find('\r', at);
  std::string v = text.substr(at + key.size(), end - at - key.size());
  while (!v.empty() && v.front() == ' ') v.erase(v.begin());
  return v;
}

nlohmann::json run_outsider(const TempDir& dir, const std::string& metainfo,
                            const std::vector<int>& ports, const std::string& name) {
  const std::string work = dir.file(name);
  run_command({"mkdir", "-p", work}, dir.file("mkdir.log"));
  std::vector<std::string> argv = {"/usr/bin/python3", source_dir() + "/tests/tools/outsider.py",
                                   "--metainfo",       metainfo,
                                   "--seconds",        "4",
                                   "--workdir",        work};
  for (int port : ports) {
    argv.push_back("--peer");
    argv.push_back("127.0.0.1:" + std::to_string(port));
  }
  const std::string out = dir.file(name + ".json");
  const int rc = run_command(argv, out);
  INFO(read_file(out));
  REQUIRE(rc == 0);
  const std::string text = read_file(out);
  const auto line = text.rfind("{\"attempts\"");
  REQUIRE(line != std::string::npos);
  return nlohmann::json::parse(text.substr(line));
}

// tcpdump on the loopback, for `ports` only (the peers' BitTorrent ports: the test's own HTTP
// requests carry blob bytes in clear and are left out).
class Capture {
 public:
  Capture(const TempDir& dir, const std::string& name, const std::vector<int>& ports)
      : file_(dir.file(name + ".pcap")), log_(dir.file(name + ".log")) {
    std::string filter = "tcp and (";
    for (std::size_t i = 0; i < ports.size(); ++i) {
      filter += (i ? " or port " : "port ") + std::to_string(ports[i]);
    }
    filter += ")";
    process_.emplace(std::vector<std::string>{"tcpdump", "-i", "lo", "-U", "-B", "65536", "-s", "0",
                                              "-n", "-w", file_, filter},
                     log_);
    REQUIRE(!wait_for_line(log_, "listening on").empty());
  }
  // Stops the capture; its bytes.
  std::string stop() {
    process_->terminate();
    return read_file(file_);
  }

 private:
  std::string file_;
  std::string log_;
  std::optional<Process> process_;
};

// How many of 64 windows of 32 bytes spread over `bytes` appear in `capture`.
int windows_found(const std::string& capture, const std::string& bytes) {
  int found = 0;
  for (std::size_t i = 0; i < 64; ++i) {
    const std::size_t at = (bytes.size() - 64) * i / 64;
    if (capture.find(bytes.substr(at, 32)) != std::string::npos) ++found;
  }
  return found;
}

int seed_port_of(const TempDir& dir, const std::string& layout_url, const std::string& token,
                 const std::string& ca) {
  REQUIRE(curl_get(dir, layout_url, token, ca, dir.file("layout")) == 0);
  return std::stoi("0" + header(dir.file("layout.head"), "X-Layerswarm-Seed-Port"));
}

}  // namespace

TEST_CASE("a closed site: members trade over TLS and an outsider with the metainfo gets nothing",
          "[integration][security]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(3 << 20, 11);
  const std::string digest = push_blob(upstream, "site/app", bytes);
  const Site site = init_site(dir);
  auto supernode = closed_supernode(dir, site, upstream.url());
  REQUIRE(!supernode->tls_address().empty());
  auto a = closed_agent(dir, site, upstream.url(), *supernode, "agent-a");
  auto b = closed_agent(dir, site, upstream.url(), *supernode, "agent-b");
  CHECK(a->log_lines({"a closed site; member certificate sha256"}) == 1);

  // Members pull through the swarm: a first, then b, from the supernode and a. A capture of
  // the peer connections during b's pull holds none of the blob's bytes.
  const std::string target = "https://" + supernode->tls_address() + "/swarm/v1/blobs/" + digest;
  const std::string query = "?ns=" + upstream.address() + "&repo=site/app";
  const int seed_port = seed_port_of(dir, target + query, site.token(), site.ca());
  REQUIRE(seed_port > 0);
  REQUIRE(p2p_port(*a) > 0);
  REQUIRE(p2p_port(*b) > 0);
  std::optional<Capture> capture;
  for (Agent* agent : {a.get(), b.get()}) {
    if (agent == b.get())
      capture.emplace(dir, "closed", std::vector<int>{seed_port, p2p_port(*a), p2p_port(*b)});
    const HttpResult r = http_get(agent->address(), "/v2/site/app/blobs/" + digest);
    CHECK(r.status == 200);
    CHECK(r.body == bytes);
    CHECK(eventually([&] { return agent->log_lines({digest, "source=swarm"}); }, 1) == 1);
  }
  const std::string captured = capture->stop();
  CHECK(captured.size() > bytes.size());  // the pieces crossed, encrypted
  CHECK(windows_found(captured, bytes) == 0);

  // The control plane: https only, the token never in the clear.
  const HttpResult plain = http_get(supernode->address(), "/v2/",
                                    {{"Authorization", std::string("Bearer ") + site.token()}});
  CHECK(plain.status == 403);

  // The outsider got chunk 0's metainfo (as from a leaked file) and knocks on the supernode's
  // and agent a's BitTorrent ports.
  const std::string meta = dir.file("chunk0.torrent");
  REQUIRE(curl_get(dir, target + "/chunks/0" + query, site.token(), site.ca(), meta) == 0);
  const auto got = run_outsider(dir, meta, {seed_port, p2p_port(*a)}, "outsider-closed");
  CHECK(got["ssl_torrent"] == true);
  CHECK(got["downloaded"] == 0);

  CHECK(a->stop() == 0);
  CHECK(b->stop() == 0);
  CHECK(supernode->stop() == 0);
  // Not in any log line, at debug either (libtorrent's tracker alerts included).
  for (const Agent* p : {a.get(), b.get(), supernode.get()}) {
    CHECK(p->log().find(site.token()) == std::string::npos);
  }
  CHECK(counter(*b, "bytes_from_swarm") == static_cast<long long>(bytes.size()));
}

TEST_CASE("an open site: the same outsider downloads a chunk (the probe works)",
          "[integration][security]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(1 << 20, 12);
  const std::string digest = push_blob(upstream, "site/app", bytes);
  auto supernode = start_supernode(dir, upstream.url(), std::string("{") + kMiBChunks + "}");
  auto a = start_agent(dir, upstream.url(), supernode->address(), "agent-a", token_file(dir),
                       R"({"swarm": {"min_blob_size": 0}})");
  const std::string target = "http://" + supernode->address() + "/swarm/v1/blobs/" + digest;
  const int seed_port =
      seed_port_of(dir, target + "?ns=" + upstream.address() + "&repo=site/app", kToken, "");
  REQUIRE(seed_port > 0);
  Capture capture(dir, "open", {seed_port});
  const HttpResult r = http_get(a->address(), "/v2/site/app/blobs/" + digest);
  REQUIRE(r.status == 200);
  CHECK(eventually([&] { return a->log_lines({digest, "source=swarm"}); }, 1) == 1);
  // In clear: the capture finds the blob's bytes (the closed site's check could see them).
  CHECK(windows_found(capture.stop(), bytes) > 8);
  const std::string meta = dir.file("chunk0.torrent");
  REQUIRE(curl_get(dir, target + "/chunks/0?ns=" + upstream.address() + "&repo=site/app", kToken,
                   "", meta) == 0);
  const auto got = run_outsider(dir, meta, {seed_port}, "outsider-open");
  CHECK(got["ssl_torrent"] == false);
  CHECK(got["downloaded"].get<long long>() > 0);
}

TEST_CASE("a client cannot make the agent connect to internal addresses",
          "[integration][security]") {
  TempDir dir;
  Registry internal(dir, {}, "internal");
  const Image image = make_image(dir, "img", {"--layer", "100K"});
  push_image(dir, image, internal, "site/app:v1");
  const int pings = internal.requests("GET", "/v2/");  // skopeo's, while pushing
  // The internal registry is not configured: `?ns=` names it, and it is on loopback.
  Agent agent(dir, {"--upstream", "http://127.0.0.1:9"});
  for (const std::string& ns : {internal.address(), "localhost:" + internal.address().substr(10)}) {
    INFO(ns);
    const auto r = http_get(agent.address(), "/v2/site/app/manifests/v1?ns=" + ns);
    CHECK(r.status == 403);
    CHECK(r.body.find("DENIED") != std::string::npos);
    CHECK(r.body.find("internal address") != std::string::npos);
  }
  CHECK(internal.requests("GET", "/v2/site/app/manifests/v1") == 0);
  CHECK(internal.requests("HEAD", "/v2/site/app/manifests/v1") == 0);
  CHECK(internal.requests("GET", "/v2/") == pings);

  // Listed, the same registry is served.
  Agent listed(
      dir,
      {"--upstream", "http://127.0.0.1:9", "--registry", internal.address() + "=" + internal.url()},
      "", "listed");
  CHECK(http_get(listed.address(), "/v2/site/app/manifests/v1?ns=" + internal.address()).status ==
        200);
}
