// Trust (docs/security.md), with real processes: a closed site's swarm exchanges pieces with
// members only, over TLS; an outsider holding a chunk's metainfo (a plain libtorrent client,
// tests/tools/outsider.py) gets nothing from the supernode or an agent, while the same outsider
// downloads the chunk from an open site (the control that shows the probe works); a capture of
// the peer connections (tcpdump) holds none of the blob's bytes in a closed site and most of
// them in an open one; the control plane is https only and the token shows up in no log line,
// even at debug.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

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
  CHECK(captured.size() > bytes.size() / 2);  // the capture saw the pieces cross (encrypted)
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

namespace {

// A TCP connection to `host_port` from `source` (any 127.x.y.z is this host's loopback), left
// idle; -1 when refused.
int idle_connection(const std::string& host_port, const std::string& source) {
  const auto colon = host_port.rfind(':');
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  ::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &to.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closed `fd` (reads EOF or an error without blocking long).
bool closed_by_server(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

// A GET of /v2/ from `source`: the status, 0 when no answer came.
int ping_from(const std::string& host_port, const std::string& source) {
  const int fd = idle_connection(host_port, source);
  if (fd < 0) return 0;
  const std::string req = "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string got;
  char buf[1024];
  pollfd p{fd, POLLIN, 0};
  for (int i = 0; i < 50 && ::poll(&p, 1, 200) >= 0; ++i) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    if (n == 0 || got.find("\r\n\r\n") != std::string::npos) break;
  }
  ::close(fd);
  return got.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(got.substr(9, 3)) : 0;
}

}  // namespace

TEST_CASE("one address holding hundreds of idle connections locks nobody out",
          "[integration][security]") {
  // This process holds the flood: it needs the descriptors.
  rlimit rl{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  REQUIRE(rl.rlim_cur >= 1200);
  TempDir dir;
  Registry upstream(dir);
  Agent agent(dir, {"--upstream", upstream.url()});
  std::vector<int> flood;
  for (int i = 0; i < 700; ++i) {
    const int fd = idle_connection(agent.address(), "127.0.0.1");
    if (fd >= 0) flood.push_back(fd);
  }
  // The agent keeps at most 512 of them; the rest it closes at once.
  int closed = 0;
  for (std::size_t i = 600; i < flood.size(); ++i) closed += closed_by_server(flood[i]) ? 1 : 0;
  CHECK(closed == static_cast<int>(flood.size()) - 600);
  // Others are served meanwhile.
  for (const char* source : {"127.0.0.2", "127.0.0.3"}) {
    INFO(source);
    CHECK(ping_from(agent.address(), source) == 200);
  }
  CHECK(eventually([&] { return agent.log_lines({"127.0.0.1 holds 512 connections"}); }, 1) == 1);
  for (int fd : flood) ::close(fd);
  // A new episode is logged again; the same one was logged once.
  CHECK(agent.log_lines({"holds 512 connections"}) == 1);
}

TEST_CASE("the supernode answers a stranger once and closes", "[integration][security]") {
  TempDir dir;
  Registry upstream(dir);
  auto supernode = start_supernode(dir, upstream.url());
  const int fd = idle_connection(supernode->address(), "127.0.0.2");
  REQUIRE(fd >= 0);
  const std::string req = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";  // keep-alive asked
  REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  for (int i = 0; i < 50; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;  // closed by the supernode
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  CHECK(got.rfind("HTTP/1.1 401", 0) == 0);
  CHECK(got.find("Connection: close") != std::string::npos);
  // A connection that sends nothing is dropped within the 5 s head timeout.
  const int silent = idle_connection(supernode->address(), "127.0.0.3");
  REQUIRE(silent >= 0);
  CHECK(wait_until([&] { return closed_by_server(silent); }, 8s, 100ms));
  ::close(silent);
}

TEST_CASE("content is served under a repository only once the upstream shows it there",
          "[integration][security]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string secret = random_bytes(300'000, 21);
  const std::string digest = push_blob(upstream, "team/private", secret);
  const Image image = make_image(dir, "img", {"--layer", "50K"});
  push_image(dir, image, upstream, "team/private:v1");
  auto supernode = start_supernode(dir, upstream.url());
  Agent agent(dir, {"--upstream", upstream.url()}, "", "agent");
  auto member = start_agent(dir, upstream.url(), supernode->address(), "member", token_file(dir));
  auto other = start_agent(dir, upstream.url(), supernode->address(), "other", token_file(dir));

  // Fetched for team/private: cached (on the agent; on the supernode through `member`).
  CHECK(http_get(agent.address(), "/v2/team/private/blobs/" + digest).body == secret);
  CHECK(http_get(member->address(), "/v2/team/private/blobs/" + digest).body == secret);
  const auto manifest = http_get(agent.address(), "/v2/team/private/manifests/v1",
                                 {{"Accept", "application/vnd.oci.image.manifest.v1+json"}});
  REQUIRE(manifest.status == 200);

  // Asked under a repository the upstream does not hold it in: 404, from every node.
  for (const Agent* node : {&agent, other.get(), member.get()}) {
    INFO(node->address());
    for (const char* method : {"GET", "HEAD"}) {
      const auto r =
          http_request(node->address(), method, "/v2/probe/public-anything/blobs/" + digest);
      CHECK(r.status == 404);
      if (std::string(method) == "GET") CHECK(r.body.find("BLOB_UNKNOWN") != std::string::npos);
    }
  }
  const auto probe = http_get(agent.address(), "/v2/probe/x/manifests/" + image.digest(),
                              {{"Accept", "application/vnd.oci.image.manifest.v1+json"}});
  CHECK(probe.status == 404);
  CHECK(probe.body.find("MANIFEST_UNKNOWN") != std::string::npos);
  // The supernode's swarm API publishes nothing under that name either.
  const HttpResult layout = http_get(
      supernode->address(),
      "/swarm/v1/blobs/" + digest + "?ns=" + upstream.address() + "&repo=probe/public-anything",
      {{"Authorization", std::string("Bearer ") + kToken}});
  CHECK(layout.status == 404);

  // Once the upstream holds it in another repository too, the cached copy serves it there
  // (after one HEAD), without fetching the bytes again.
  const int gets_before = upstream.requests("GET", "/v2/team/private/blobs/" + digest);
  push_blob(upstream, "team/other", secret);
  const auto there = http_get(agent.address(), "/v2/team/other/blobs/" + digest);
  CHECK(there.body == secret);
  CHECK(upstream.requests("HEAD", "/v2/team/other/blobs/" + digest) == 1);
  CHECK(upstream.requests("GET", "/v2/team/other/blobs/" + digest) == 0);
  CHECK(upstream.requests("GET", "/v2/team/private/blobs/" + digest) == gets_before);
  CHECK(eventually(
            [&] {
              return agent.log_lines({"team/other/blobs/" + digest, "source=cache"});
            },
            1) == 1);
}

TEST_CASE("the audit log records who pulled what, and refusals, without secrets",
          "[integration][security]") {
  TempDir dir;
  Registry upstream(dir);
  const std::string bytes = random_bytes(200'000, 31);
  const std::string digest = push_blob(upstream, "team/app", bytes);
  const std::string agent_audit = dir.file("agent-audit.jsonl");
  const std::string supernode_audit = dir.file("supernode-audit.jsonl");
  auto supernode =
      start_supernode(dir, upstream.url(), R"({"audit_log": ")" + supernode_audit + R"("})");
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token_file(dir),
                           R"({"audit_log": ")" + agent_audit + R"("})");
  const HeaderList alice = {{"Authorization", "Basic YWxpY2U6cHc="}};  // alice:pw
  CHECK(http_get(agent->address(), "/v2/team/app/blobs/" + digest, alice).status == 200);
  CHECK(http_get(agent->address(), "/v2/probe/x/blobs/" + digest).status == 404);
  CHECK(http_get(supernode->address(), "/v2/").status == 401);  // a stranger
  CHECK(agent->stop() == 0);
  CHECK(supernode->stop() == 0);

  std::vector<nlohmann::json> lines;
  for (const std::string& file : {agent_audit, supernode_audit}) {
    const std::string text = read_file(file);
    CHECK(text.find(kToken) == std::string::npos);
    CHECK(text.find("YWxpY2U6cHc=") == std::string::npos);
    std::size_t at = 0;
    for (int i = 0; i < 1000 && at < text.size(); ++i) {
      const auto end = text.find('\n', at);
      lines.push_back(nlohmann::json::parse(text.substr(at, end - at)));
      at = end + 1;
    }
  }
  auto count = [&](const std::function<bool(const nlohmann::json&)>& match) {
    return std::count_if(lines.begin(), lines.end(), match);
  };
  CHECK(count([&](const nlohmann::json& l) {
          return l["identity"] == "user:alice" && l["repository"] == "team/app" &&
                 l["reference"] == digest && l["decision"] == "served" && l["kind"] == "blobs";
        }) == 1);
  CHECK(count([&](const nlohmann::json& l) {
          return l["identity"] == "anonymous" && l["repository"] == "probe/x" &&
                 l["decision"] == "refused" && l["status"] == 404 && l.contains("reason");
        }) == 1);
  // The supernode saw the agent by its token's hash, and the stranger's refusal.
  CHECK(count([&](const nlohmann::json& l) {
          return l["identity"].get<std::string>().rfind("token:", 0) == 0 &&
                 l["repository"] == "team/app" && l["decision"] == "served";
        }) >= 1);
  CHECK(count([&](const nlohmann::json& l) {
          return l["status"] == 401 && l["decision"] == "refused";
        }) == 1);
}

TEST_CASE("authorize_clients: only clients whose own credentials the registry accepts are served",
          "[integration][security]") {
  TempDir dir;
  RegistryAuth auth;
  auth.kind = RegistryAuth::Kind::kHtpasswd;
  Registry upstream(dir, auth);
  const Image image = make_image(dir, "img", {"--layer", "60K"});
  push_image(dir, image, upstream, "team/app:v1");
  // The agent has credentials of its own (it fetches with them), and asks clients for theirs.
  Agent agent(dir, {},
              registries_config(upstream, R"(, "username": "tester", "password": "s3cret-pass", )"
                                          R"("authorize_clients": true)"));
  const std::string good = "Basic dGVzdGVyOnMzY3JldC1wYXNz";  // tester:s3cret-pass
  const std::string bad = "Basic dGVzdGVyOndyb25n";           // tester:wrong
  const std::string accept = "application/vnd.oci.image.manifest.v1+json";
  const std::string manifest = "/v2/team/app/manifests/v1";

  // No credentials: challenged (the ping too, so clients learn to send them).
  const auto ping = http_get(agent.address(), "/v2/");
  CHECK(ping.status == 401);
  CHECK(ping.header("www-authenticate").rfind("Basic realm=", 0) == 0);
  CHECK(http_get(agent.address(), manifest, {{"Accept", accept}}).status == 401);
  // Good credentials: served (and cached).
  const auto served =
      http_get(agent.address(), manifest, {{"Accept", accept}, {"Authorization", good}});
  CHECK(served.status == 200);
  const std::string blob = image.blob_digests().front();
  CHECK(http_get(agent.address(), "/v2/team/app/blobs/" + blob, {{"Authorization", good}}).status ==
        200);
  // Refused credentials get nothing, cached content included.
  CHECK(http_get(agent.address(), manifest, {{"Accept", accept}, {"Authorization", bad}}).status ==
        401);
  CHECK(http_get(agent.address(), "/v2/team/app/blobs/" + blob, {{"Authorization", bad}}).status ==
        401);
  CHECK(http_get(agent.address(), "/v2/team/app/blobs/" + blob).status == 401);
  // The decision is cached per credential and repository: a second blob request with the good
  // credential asks the registry nothing more for authorization.
  const int heads = upstream.requests("HEAD", "/v2/team/app/blobs/" + blob);
  CHECK(http_get(agent.address(), "/v2/team/app/blobs/" + blob, {{"Authorization", good}}).status ==
        200);
  CHECK(upstream.requests("HEAD", "/v2/team/app/blobs/" + blob) == heads);

  // A real client follows the challenge: skopeo with credentials for the mirror pulls, skopeo
  // without them or with wrong ones does not.
  CHECK(pull_to_dir(dir, agent.address(), "team/app:v1", "with-creds",
                    {"--src-creds", auth.user + ":" + auth.password}) == 0);
  CHECK(pull_to_dir(dir, agent.address(), "team/app:v1", "no-creds") != 0);
  CHECK(pull_to_dir(dir, agent.address(), "team/app:v1", "bad-creds",
                    {"--src-creds", auth.user + ":wrong"}) != 0);
}

TEST_CASE("authorize_clients behind a supernode: the supernode checks the forwarded credential",
          "[integration][security]") {
  TempDir dir;
  RegistryAuth auth;
  auth.kind = RegistryAuth::Kind::kHtpasswd;
  Registry upstream(dir, auth);
  const Image image = make_image(dir, "img", {"--layer", "60K"});
  push_image(dir, image, upstream, "team/app:v1");
  // The supernode holds the registry's credentials and knows nothing of authorize_clients.
  auto supernode = start_supernode(
      dir, upstream.url(),
      registries_config(upstream, R"(, "username": "tester", "password": "s3cret-pass")"));
  // The agent has no credentials of its own and asks its clients for theirs.
  auto agent = start_agent(dir, upstream.url(), supernode->address(), "agent", token_file(dir),
                           registries_config(upstream, R"(, "authorize_clients": true)",
                                             R"("direct_fallback": false, )"));
  const std::string good = "Basic dGVzdGVyOnMzY3JldC1wYXNz";  // tester:s3cret-pass
  const std::string bad = "Basic dGVzdGVyOndyb25n";           // tester:wrong
  const HeaderList accept = {{"Accept", "application/vnd.oci.image.manifest.v1+json"}};
  const std::string manifest = "/v2/team/app/manifests/v1";
  auto with = [&](const std::string& credential) {
    HeaderList h = accept;
    h.emplace_back("Authorization", credential);
    return h;
  };
  CHECK(http_get(agent->address(), manifest, accept).status == 401);
  CHECK(http_get(agent->address(), manifest, with(bad)).status == 401);
  CHECK(http_get(agent->address(), manifest, with(good)).status == 200);
  const std::string blob = image.blob_digests().front();
  CHECK(http_get(agent->address(), "/v2/team/app/blobs/" + blob, with(good)).status == 200);
  CHECK(http_get(agent->address(), "/v2/team/app/blobs/" + blob, with(bad)).status == 401);
  // A client cannot forge the forwarding header at the agent: the agent ignores it.
  HeaderList forged = accept;
  forged.emplace_back("Layerswarm-Client-Authorization", good);
  CHECK(http_get(agent->address(), manifest, forged).status == 401);
}

TEST_CASE("a full connection table makes room: idle connections give way to new clients",
          "[integration][security]") {
  rlimit rl{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  if (rl.rlim_max < 9000) {
    WARN("skipped: a descriptor limit of " << rl.rlim_max << " cannot hold the flood");
    return;
  }
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  TempDir dir;
  Registry upstream(dir);
  Agent agent(dir, {"--upstream", upstream.url()});
  // Eight addresses, 512 idle connections each: the agent's 4,096 slots.
  std::vector<int> flood;
  for (int a = 1; a <= 8; ++a) {
    for (int i = 0; i < 512; ++i) {
      const int fd = idle_connection(agent.address(), "127.0.1." + std::to_string(a));
      if (fd >= 0) flood.push_back(fd);
    }
  }
  REQUIRE(flood.size() == 4096);
  // A new client is served after at most a few tries (the first may arrive before the sweep).
  int status = 0;
  for (int attempt = 0; attempt < 20 && status != 200; ++attempt) {
    status = ping_from(agent.address(), "127.0.2.1");
  }
  CHECK(status == 200);
  CHECK(eventually([&] { return agent.log_lines({"connection limit 4096 reached"}); }, 1) == 1);
  int closed = 0;
  for (int fd : flood) closed += closed_by_server(fd) ? 1 : 0;
  CHECK(closed > 2048);  // the idle ones were closed to make room
  for (int fd : flood) ::close(fd);
}

TEST_CASE("authorize_clients: a client's own bearer token from the registry's token service works",
          "[integration][security]") {
  TempDir dir;
  TokenServer tokens(dir, "tester", "s3cret-pass");
  RegistryAuth auth;
  auth.kind = RegistryAuth::Kind::kToken;
  auth.token_server = &tokens;
  Registry upstream(dir, auth);
  const Image image = make_image(dir, "img", {"--layer", "40K"});
  push_image(dir, image, upstream, "team/app:v1");
  Agent agent(dir, {},
              registries_config(upstream, R"(, "username": "tester", "password": "s3cret-pass", )"
                                          R"("authorize_clients": true)"));
  // The client gets a pull token for team/app from the registry's token service itself.
  std::string realm = tokens.realm();  // http://HOST:PORT/token
  const std::string token_host = realm.substr(7, realm.find('/', 7) - 7);
  const auto issued = http_get(token_host,
                               "/token?service=layerswarm-test-registry&scope=repository:team/"
                               "app:pull",
                               {{"Authorization", "Basic dGVzdGVyOnMzY3JldC1wYXNz"}});
  REQUIRE(issued.status == 200);
  const std::string token = nlohmann::json::parse(issued.body)["token"].get<std::string>();
  const HeaderList accept = {{"Accept", "application/vnd.oci.image.manifest.v1+json"}};
  auto with = [&](const std::string& credential) {
    HeaderList h = accept;
    h.emplace_back("Authorization", credential);
    return h;
  };
  const std::string manifest = "/v2/team/app/manifests/v1";
  CHECK(http_get(agent.address(), manifest, with("Bearer " + token)).status == 200);
  CHECK(http_get(agent.address(), manifest, with("Bearer not-a-token")).status == 401);
  // The token is for team/app only: another repository of the registry is refused.
  CHECK(http_get(agent.address(), "/v2/team/other/manifests/v1", with("Bearer " + token)).status !=
        200);
}
