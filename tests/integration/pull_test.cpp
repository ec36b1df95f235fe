// skopeo pulls generated images through the agent from a real docker-registry, in every
// manifest format, and gets exactly the bytes a direct pull gets.
#include <catch2/catch.hpp>

#include "tests/support/fixtures.h"

using namespace layerswarm::test;

namespace {

struct Format {
  std::string name;
  std::vector<std::string> image_args;
  std::vector<std::string> push_args;
  std::string media_type;
};

const std::vector<Format>& formats() {
  static const std::vector<Format> f = {
      {"oci",
       {"--layer", "700K", "--layer", "90K"},
       {},
       "application/vnd.oci.image.manifest.v1+json"},
      {"v2s2",
       {"--layer", "500K"},
       {"--format", "v2s2"},
       "application/vnd.docker.distribution.manifest.v2+json"},
      {"index",
       {"--layer", "300K", "--platform", "linux/amd64", "--platform", "linux/arm64"},
       {"--all"},
       "application/vnd.oci.image.index.v1+json"},
      {"list",
       {"--layer", "300K", "--platform", "linux/amd64", "--platform", "linux/arm64"},
       {"--all", "--format", "v2s2"},
       "application/vnd.docker.distribution.manifest.list.v2+json"},
  };
  return f;
}

// Configs and layers in mkimage.py's summary (everything but manifests and indexes).
int image_blob_count(const std::string& summary_file) {
  int n = 0;
  const auto summary = nlohmann::json::parse(read_file(summary_file));
  for (const auto& b : summary["blobs"]) {
    const std::string type = b["mediaType"];
    n += type.find("manifest") == std::string::npos && type.find("index") == std::string::npos;
  }
  return n;
}

const HeaderList kAllManifestTypes = {
    {"Accept", "application/vnd.oci.image.manifest.v1+json"},
    {"Accept", "application/vnd.docker.distribution.manifest.v2+json"},
    {"Accept", "application/vnd.docker.distribution.manifest.list.v2+json"},
    {"Accept", "application/vnd.oci.image.index.v1+json"}};

}  // namespace

TEST_CASE("skopeo pulls every manifest format byte for byte, the second time from cache",
          "[integration][pull]") {
  TempDir dir;
  Registry upstream(dir);
  for (const auto& f : formats()) {
    push_image(dir, make_image(dir, f.name, f.image_args), upstream, "test/" + f.name + ":v1",
               f.push_args);
  }
  Agent agent(dir, {"--upstream", upstream.url()});

  for (const auto& f : formats()) {
    DYNAMIC_SECTION(f.name) {
      const std::string ref = "test/" + f.name + ":v1";
      REQUIRE(pull_to_dir(dir, upstream.address(), ref, f.name + "-direct") == 0);
      REQUIRE(pull_to_dir(dir, agent.address(), ref, f.name + "-cold") == 0);
      // Every config and layer once (manifests are fetched as manifests).
      const int blobs = image_blob_count(dir.file(f.name + ".json"));
      const auto blob_gets = [&] {
        return upstream.agent_requests("GET", "/v2/test/" + f.name + "/blobs/");
      };
      CHECK(eventually(blob_gets, blobs) == blobs);
      REQUIRE(pull_to_dir(dir, agent.address(), ref, f.name + "-warm") == 0);

      std::string why;
      CHECK(same_tree(dir.file(f.name + "-direct"), dir.file(f.name + "-cold"), &why));
      INFO(why);
      CHECK(same_tree(dir.file(f.name + "-direct"), dir.file(f.name + "-warm"), &why));
      // The warm pull fetched no blob from the upstream.
      CHECK(blob_gets() == blobs);

      // The manifest keeps its media type, digest and exact bytes; HEAD agrees with GET.
      const auto direct =
          http_get(upstream.address(), "/v2/" + std::string("test/") + f.name + "/manifests/v1",
                   kAllManifestTypes);
      const auto via =
          http_get(agent.address(), "/v2/test/" + f.name + "/manifests/v1", kAllManifestTypes);
      CHECK(via.status == 200);
      CHECK(via.header("content-type") == f.media_type);
      CHECK(via.body == direct.body);
      CHECK(via.header("docker-content-digest") == direct.header("docker-content-digest"));
      const auto head =
          http_request(agent.address(), "HEAD", "/v2/test/" + f.name + "/manifests/v1");
      CHECK(head.status == 200);
      CHECK(head.header("content-length") == std::to_string(direct.body.size()));
      CHECK(head.header("content-type") == f.media_type);
      CHECK(head.header("docker-content-digest") == direct.header("docker-content-digest"));
    }
  }
}

TEST_CASE("an index is served whatever the client accepts (conformance sends OCI only)",
          "[integration][pull]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(
      dir, "multi", {"--layer", "100K", "--platform", "linux/amd64", "--platform", "linux/arm64"});
  push_image(dir, image, upstream, "test/multi:v1", {"--all"});
  Agent agent(dir, {"--upstream", upstream.url()});
  const auto by_digest = http_get(agent.address(), "/v2/test/multi/manifests/" + image.digest(),
                                  {{"Accept", "application/vnd.oci.image.manifest.v1+json"}});
  CHECK(by_digest.status == 200);
  CHECK(by_digest.header("content-type") == "application/vnd.oci.image.index.v1+json");
  CHECK(by_digest.header("docker-content-digest") == image.digest());
  CHECK(sha256_hex(by_digest.body) == image.digest().substr(7));
}

TEST_CASE("the upstream comes from ns=, a path prefix, or the default", "[integration][routing]") {
  TempDir dir;
  Registry upstream(dir);
  const Image image = make_image(dir, "app", {"--layer", "50K"});
  push_image(dir, image, upstream, "library/app:v1");
  // The default upstream is unreachable: only named registries work.
  Agent agent(dir,
              {"--upstream", "http://127.0.0.1:9", "--registry", "docker.io=" + upstream.url(),
               "--registry", "my.reg.test:5000=" + upstream.url()},
              R"({"upstream_client": {"response_timeout": "3s", "retries": 1}})");
  CHECK(http_get(agent.address(), "/v2/library/app/manifests/v1?ns=docker.io").status == 200);
  CHECK(http_get(agent.address(), "/v2/app/manifests/v1?ns=docker.io").status == 200);  // library/
  CHECK(http_get(agent.address(), "/v2/library/app/manifests/v1?ns=index.docker.io").status == 200);
  CHECK(http_get(agent.address(), "/v2/library/app/manifests/v1?ns=my.reg.test%3A5000").status ==
        200);
  CHECK(http_get(agent.address(), "/v2/my.reg.test:5000/library/app/manifests/v1").status == 200);
  const std::string blob = image.blob_digests().front();
  const auto via_prefix =
      http_get(agent.address(), "/v2/my.reg.test:5000/library/app/blobs/" + blob);
  CHECK(via_prefix.status == 200);
  CHECK(sha256_hex(via_prefix.body) == blob.substr(7));
  const auto unreachable = http_get(agent.address(), "/v2/library/app/manifests/v1");
  CHECK(unreachable.status == 503);
  CHECK(unreachable.body.find("UNAVAILABLE") != std::string::npos);
}

TEST_CASE("unlisted registries can be refused", "[integration][routing]") {
  TempDir dir;
  Registry upstream(dir);
  Agent agent(dir, {"--upstream", upstream.url()}, R"({"allow_unlisted_registries": false})");
  const auto r = http_get(agent.address(), "/v2/x/manifests/v1?ns=elsewhere.example");
  CHECK(r.status == 403);
  CHECK(r.body.find("DENIED") != std::string::npos);
}
