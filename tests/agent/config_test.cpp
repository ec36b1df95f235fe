#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "tests/support/temp_dir.h"

using namespace layerswarm;
using namespace layerswarm::agent;
using namespace std::chrono_literals;
using layerswarm::test::TempDir;
using layerswarm::test::write_file;

TEST_CASE("defaults", "[unit][config]") {
  auto c = load_config("", Overrides{});
  REQUIRE(c);
  CHECK(c->listen == "127.0.0.1:65001");
  CHECK(c->mirror.upstream == "https://registry-1.docker.io");
  CHECK(c->mirror.cache.tag_ttl == 30s);
  CHECK(c->mirror.cache.ttl == std::chrono::hours(24 * 7));
  CHECK(c->mirror.registries.lookup("docker.io").url.str() == "https://registry-1.docker.io/");
  CHECK(c->swarm.duplicate_wait == 1500ms);
  CHECK(c->swarm.upload_slots == 16);
  CHECK(c->swarm.max_seeding_blobs == 64);
  CHECK(c->swarm.max_seeding_torrents == 2048);
  CHECK(c->swarm.max_peer_connections == 128);
}

TEST_CASE("a full configuration file", "[unit][config]") {
  TempDir dir;
  write_file(dir.file("docker.json"),
             R"({"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
                          "ghcr.io":{"username":"gh","password":"pw"}}})");
  const std::string cfg = R"({
    "listen": "0.0.0.0:5001", "data_dir": "/tmp/x", "upstream": "docker.io",
    "allow_unlisted_registries": false,
    "registries": {
      "docker.io": {"docker_config": ")" +
                          dir.file("docker.json") + R"("},
      "ghcr.io": {"docker_config": ")" +
                          dir.file("docker.json") + R"("},
      "my.reg:5000": {"url": "http://10.0.0.5:5000", "username": "u", "password": "p",
                      "ca_file": "/etc/ca.pem", "insecure_skip_verify": true}
    },
    "tls": {"listen": "0.0.0.0:5443", "cert": "c.pem", "key": "k.pem"},
    "cache": {"ttl": "3d", "tag_ttl": "10s", "max_stale": "1h", "sweep_interval": 600,
              "max_size": "85%", "evict_to": "1GiB", "scrub_interval": "1d", "scrub_rate": "4MiB",
              "pins": ["alpine:3.19", {"image": "ghcr.io/org/app@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "platforms": ["linux/arm64/v8"]}],
              "pin_refresh": "1h"},
    "upstream_client": {"connect_timeout": "2s", "read_timeout": "5s", "response_timeout": "8s", "retries": 2,
                        "blob_order": "smallest-first"},
    "log": {"level": "debug"},
    "swarm": {"duplicate_wait": "0s", "upload_slots": 0, "max_seeding_torrents": 100,
              "max_peer_connections": 500},
    "drain_timeout": "3s"
  })";
  write_file(dir.file("agent.json"), cfg);
  auto c = load_config(dir.file("agent.json"), Overrides{});
  REQUIRE(c);
  CHECK(c->listen == "0.0.0.0:5001");
  CHECK_FALSE(c->mirror.allow_unlisted_registries);
  CHECK(c->mirror.cache.ttl == std::chrono::hours(72));
  CHECK(c->mirror.cache.sweep_interval == 600s);
  REQUIRE(c->mirror.cache.max_size);
  CHECK(c->mirror.cache.max_size->is_share);
  CHECK(c->mirror.cache.evict_to.bytes == 1u << 30);
  CHECK(c->mirror.cache.scrub_interval == std::chrono::hours(24));
  CHECK(c->mirror.cache.scrub_rate == 4u << 20);
  REQUIRE(c->mirror.cache.pins.size() == 2);
  CHECK(c->mirror.cache.pins[0].image.tag == "3.19");
  CHECK(c->mirror.cache.pins[1].image.registry == "ghcr.io");
  CHECK(c->mirror.cache.pins[1].platforms == std::vector<std::string>{"linux/arm64/v8"});
  CHECK(c->mirror.cache.pin_refresh == std::chrono::hours(1));
  CHECK(c->mirror.upstream_client.retries == 2);
  CHECK(c->mirror.upstream_client.blob_order == "smallest-first");
  CHECK(c->tls.listen == "0.0.0.0:5443");
  CHECK(c->swarm.duplicate_wait == 0ms);  // libtorrent's end game
  CHECK(c->swarm.upload_slots == 0);      // a slot for every interested peer
  CHECK(c->swarm.max_seeding_torrents == 100);
  CHECK(c->swarm.max_peer_connections == 500);
  const auto hub = c->mirror.registries.lookup("index.docker.io");
  CHECK(hub.username == "hub");
  CHECK(hub.password == "secret");
  CHECK(c->mirror.registries.lookup("ghcr.io").username == "gh");
  const auto mine = c->mirror.registries.lookup("my.reg:5000");
  CHECK(mine.url.str() == "http://10.0.0.5:5000/");
  CHECK(mine.insecure_skip_verify);
  CHECK(mine.ca_file == "/etc/ca.pem");
  // An unlisted registry is reached over https, anonymously.
  CHECK(c->mirror.registries.lookup("quay.io").url.str() == "https://quay.io/");
}

TEST_CASE("flags override the file", "[unit][config]") {
  Overrides o;
  o.listen = "127.0.0.1:0";
  o.upstream = "http://127.0.0.1:5000";
  o.registries = {"docker.io=http://127.0.0.1:5001", "ghcr.io=https://mirror.example"};
  auto c = load_config("", o);
  REQUIRE(c);
  CHECK(c->listen == "127.0.0.1:0");
  CHECK(c->mirror.registries.lookup("docker.io").url.port == 5001);
  CHECK(c->mirror.registries.lookup("ghcr.io").url.host == "mirror.example");
}

TEST_CASE("configuration errors name the key", "[unit][config]") {
  TempDir dir;
  struct Case {
    std::string json;
    std::string mentions;
  };
  const Case cases[] = {
      {R"({"lsiten": "x"})", "lsiten"},
      {R"({"cache": {"ttl": "7 days"}})", "cache.ttl"},
      {R"({"cache": {"tag_ttl": true}})", "cache.tag_ttl"},
      {R"({"cache": {"tag_ttl": 66666666666666630}})", "cache.tag_ttl"},
      {R"({"cache": {"max_size": "12XB"}})", "cache.max_size"},
      {R"({"cache": {"max_size": "100KiB"}})", "cache.max_size"},
      {R"({"cache": {"max_size": "2MiB", "evict_to": "3MiB"}})", "cache.evict_to"},
      {R"({"cache": {"scrub_rate": "50%"}})", "cache.scrub_rate"},
      {R"({"cache": {"pins": "alpine"}})", "cache.pins"},
      {R"({"cache": {"pins": ["UPPER:v1"]}})", "cache.pins[0]"},
      {R"({"cache": {"pins": [{"image": "a", "platforms": ["linux"]}]}})", "platforms"},
      {R"({"cache": {"pins": [{"image": "a", "arch": "x"}]}})", "arch"},
      {R"({"swarm": {"peers_per_torrent": 1}})", "peers_per_torrent"},
      {R"({"swarm": {"duplicate_wait": "1.5s"}})", "swarm.duplicate_wait"},
      {R"({"swarm": {"upload_slots": 100001}})", "swarm.upload_slots"},
      {R"({"swarm": {"upload_slots": -1}})", "swarm.upload_slots"},
      {R"({"swarm": {"max_seeding_torrents": 0}})", "swarm.max_seeding_torrents"},
      {R"({"swarm": {"max_seeding_torrents": 1000001}})", "swarm.max_seeding_torrents"},
      {R"({"swarm": {"max_peer_connections": 15}})", "swarm.max_peer_connections"},
      {R"({"swarm": {"max_peer_connections": 8001}})", "swarm.max_peer_connections"},
      {R"({"cache": {"bogus": 1}})", "bogus"},
      {R"({"registries": {"docker.io": {"url": "ftp://x"}}})", "registries.docker.io.url"},
      {R"({"registries": {"docker.io": {"user": "x"}}})", "user"},
      {R"({"registries": {"docker.io": {"username": "x"}}})", "username and password"},
      {R"({"registries": {"Bad Host": {}}})", "not a registry host"},
      {R"({"upstream": "nowhere"})", "neither a URL"},
      {R"({"tls": {"listen": "0.0.0.0:1"}})", "tls.cert"},
      {R"({"upstream_client": {"retries": 0}})", "retries"},
      {R"({"upstream_client": {"blob_order": "fifo"}})", "upstream_client.blob_order"},
      {R"([1,2])", "expected an object"},
      {"{not json", "not valid JSON"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    write_file(dir.file("bad.json"), c.json);
    auto r = load_config(dir.file("bad.json"), Overrides{});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == make_error_code(Errc::kConfigInvalid));
    CHECK_THAT(r.error().what(), Catch::Contains(c.mentions));
  }
  Overrides bad_flag;
  bad_flag.registries = {"no-equals-sign"};
  CHECK_FALSE(load_config("", bad_flag));
  CHECK_FALSE(load_config(dir.file("missing.json"), Overrides{}));
}
