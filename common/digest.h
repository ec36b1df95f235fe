// Content digests (sha256 and sha512, lowercase hex) and a streaming hasher.
// A Digest is valid by construction: the only ways to get one are parse() of a string that
// matches the OCI grammar and Hasher::finish(). Only a Digest ever becomes a file name.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace layerswarm {

class Digest {
 public:
  enum class Algorithm { kSha256, kSha512 };

  // Parses "sha256:<64 hex>" or "sha512:<128 hex>" (lowercase only).
  // Errors: Errc::kDigestInvalid.
  static Result<Digest> parse(std::string_view text);

  // The sha256 digest of `data`.
  static Digest sha256_of(std::string_view data);

  Algorithm algorithm() const { return algorithm_; }
  std::string_view algorithm_name() const;
  std::string_view hex() const { return std::string_view(text_).substr(text_.find(':') + 1); }
  const std::string& str() const { return text_; }

  friend bool operator==(const Digest& a, const Digest& b) { return a.text_ == b.text_; }
  friend bool operator<(const Digest& a, const Digest& b) { return a.text_ < b.text_; }

 private:
  Digest(Algorithm algorithm, std::string text) : algorithm_(algorithm), text_(std::move(text)) {}
  friend class Hasher;

  Algorithm algorithm_;
  std::string text_;
};

// Incremental hashing with OpenSSL EVP (SHA-NI where the CPU has it).
// Not thread-safe; one Hasher per stream of bytes.
class Hasher {
 public:
  explicit Hasher(Digest::Algorithm algorithm);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(const void* data, std::size_t size);
  // Returns the digest of everything updated so far. The hasher must not be used after.
  Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Digest::Algorithm algorithm_;
};

}  // namespace layerswarm
