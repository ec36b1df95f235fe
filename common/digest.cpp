#include "common/digest.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace layerswarm {
namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The EVP_MD objects are fetched once (a fetch per hash costs more than hashing a manifest).
const EVP_MD* md_for(Digest::Algorithm algorithm) {
  static const EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static const EVP_MD* sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  return algorithm == Digest::Algorithm::kSha256 ? sha256 : sha512;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return Error(Errc::kDigestInvalid, "digest has no algorithm");
  }
  const std::string_view algorithm = text.substr(0, colon);
  const std::string_view hex = text.substr(colon + 1);
  if (algorithm == "sha256" && hex.size() == 64 && is_lower_hex(hex)) {
    return Digest(Algorithm::kSha256, std::string(text));
  }
  if (algorithm == "sha512" && hex.size() == 128 && is_lower_hex(hex)) {
    return Digest(Algorithm::kSha512, std::string(text));
  }
  return Error(Errc::kDigestInvalid, "unsupported or malformed digest");
}

Digest Digest::sha256_of(std::string_view data) {
  Hasher h(Algorithm::kSha256);
  h.update(data.data(), data.size());
  return h.finish();
}

std::string_view Digest::algorithm_name() const {
  return algorithm_ == Algorithm::kSha256 ? "sha256" : "sha512";
}

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Hasher::Hasher(Digest::Algorithm algorithm) : impl_(new Impl), algorithm_(algorithm) {
  impl_->ctx = EVP_MD_CTX_new();
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, md_for(algorithm), nullptr) != 1) {
    // Only on a broken OpenSSL installation: an impossible condition, not an input error.
    throw std::runtime_error("OpenSSL digest initialisation failed");
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(const void* data, std::size_t size) {
  EVP_DigestUpdate(impl_->ctx, data, size);
}

Digest Hasher::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(algorithm_ == Digest::Algorithm::kSha256 ? "sha256:" : "sha512:");
  text.reserve(text.size() + 2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    text.push_back(kHex[out[i] >> 4]);
    text.push_back(kHex[out[i] & 0xf]);
  }
  return Digest(algorithm_, std::move(text));
}

}  // namespace layerswarm
