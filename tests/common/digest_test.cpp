#include <catch2/catch.hpp>

#include "common/digest.h"

using layerswarm::Digest;
using layerswarm::Hasher;

TEST_CASE("Digest::parse accepts only the OCI grammar", "[unit][digest]") {
  const std::string h64(64, 'a');
  const std::string h128(128, '0');
  struct Case {
    std::string text;
    bool ok;
  };
  const Case cases[] = {
      {"sha256:" + h64, true},
      {"sha512:" + h128, true},
      {"sha256:" + std::string(63, 'a'), false},
      {"sha256:" + std::string(65, 'a'), false},
      {"sha256:" + std::string(64, 'A'), false},  // uppercase hex
      {"sha256:" + std::string(63, 'a') + "g", false},
      {"sha512:" + h64, false},
      {"sha384:" + std::string(96, 'a'), false},
      {"md5:" + std::string(32, 'a'), false},
      {h64, false},
      {"sha256:", false},
      {":" + h64, false},
      {"sha256:totallywrong", false},
      {"sha256:../../etc/passwd", false},
      {"", false},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto d = Digest::parse(c.text);
    CHECK(d.ok() == c.ok);
    if (c.ok) CHECK(d->str() == c.text);
    if (!c.ok) CHECK(d.error().code == make_error_code(layerswarm::Errc::kDigestInvalid));
  }
}

TEST_CASE("Hasher computes known SHA-256 and SHA-512 vectors", "[unit][digest]") {
  CHECK(Digest::sha256_of("").str() ==
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Digest::sha256_of("abc").str() ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Hasher h(Digest::Algorithm::kSha512);
  h.update("abc", 3);
  CHECK(h.finish().str() ==
        "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST_CASE("Hasher gives the same digest for any split of the input", "[unit][digest]") {
  std::string data(100'000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7919 % 251);
  const Digest whole = Digest::sha256_of(data);
  for (std::size_t chunk : {1u, 7u, 4096u, 65536u}) {
    Hasher h(Digest::Algorithm::kSha256);
    for (std::size_t off = 0; off < data.size(); off += chunk) {
      h.update(data.data() + off, std::min(chunk, data.size() - off));
    }
    CHECK(h.finish() == whole);
  }
}
