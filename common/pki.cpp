#include "common/pki.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace layerswarm::pki {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using KeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Bio read_bio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

Result<Key> load_key(const std::string& pem) {
  Bio bio = read_bio(pem);
  Key key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return Error(Errc::kConfigInvalid, "not a PEM private key: " + openssl_error());
  return key;
}

Result<Cert> load_cert(const std::string& pem) {
  Bio bio = read_bio(pem);
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return Error(Errc::kConfigInvalid, "not a PEM certificate: " + openssl_error());
  return cert;
}

Result<std::string> cert_pem(X509* cert) {
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert) != 1) {
    return Error(Errc::kInternal, "writing a certificate: " + openssl_error());
  }
  return bio_text(out.get());
}

Status add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Error(Errc::kInternal, "certificate extension " + value + ": " + openssl_error());
  }
  return {};
}

// Fills and signs `cert` (subject, validity, extensions) with `signer`.
Status finish(X509* cert, X509* issuer, EVP_PKEY* signer, const Subject& subject, Usage usage,
              std::chrono::hours validity) {
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Error(Errc::kInternal, openssl_error());
  serial[0] &= 0x7f;  // positive
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) {
    return Error(Errc::kInternal, openssl_error());
  }
  X509_set_version(cert, 2);
  X509_NAME* name = X509_get_subject_name(cert);
  const auto* cn = reinterpret_cast<const unsigned char*>(subject.common_name.c_str());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn, -1, -1, 0) != 1) {
    return Error(Errc::kInternal, "certificate subject: " + openssl_error());
  }
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
  // A little slack backwards for clocks that disagree across the site.
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert),
                  static_cast<long>(std::chrono::seconds(validity).count()));
  X509* self_or_issuer = issuer ? issuer : cert;
  Status s;
  if (usage == Usage::kCa) {
    s = add_extension(cert, self_or_issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    if (s) s = add_extension(cert, self_or_issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    s = add_extension(cert, self_or_issuer, NID_basic_constraints, "critical,CA:FALSE");
    if (s) {
      s = add_extension(cert, self_or_issuer, NID_key_usage,
                        "critical,digitalSignature,keyEncipherment,keyAgreement");
    }
    if (s) s = add_extension(cert, self_or_issuer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (s) s = add_extension(cert, self_or_issuer, NID_subject_key_identifier, "hash");
  if (s && issuer) s = add_extension(cert, issuer, NID_authority_key_identifier, "keyid:always");
  std::string alt;
  for (const auto& d : subject.dns) alt += (alt.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : subject.ips) alt += (alt.empty() ? "IP:" : ",IP:") + ip;
  if (s && !alt.empty()) s = add_extension(cert, self_or_issuer, NID_subject_alt_name, alt);
  if (!s) return s;
  if (X509_sign(cert, signer, EVP_sha256()) <= 0) {
    return Error(Errc::kInternal, "signing a certificate: " + openssl_error());
  }
  return {};
}

}  // namespace

Result<std::string> generate_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return Error(Errc::kInternal, "generating a key: " + openssl_error());
  Bio out(BIO_new(BIO_s_mem()));
  if (!out ||
      PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Error(Errc::kInternal, "writing a key: " + openssl_error());
  }
  return bio_text(out.get());
}

Result<std::string> public_key_der(const std::string& key_pem) {
  auto key = load_key(key_pem);
  if (!key) return key.error();
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key->get(), &der);
  if (n <= 0) return Error(Errc::kInternal, "encoding a public key: " + openssl_error());
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

Result<std::string> make_ca(const std::string& key_pem, const std::string& common_name,
                            std::chrono::hours validity) {
  auto key = load_key(key_pem);
  if (!key) return key.error();
  Cert cert(X509_new());
  if (!cert || X509_set_pubkey(cert.get(), key->get()) != 1) {
    return Error(Errc::kInternal, openssl_error());
  }
  Subject subject{common_name, {}, {}};
  auto s = finish(cert.get(), nullptr, key->get(), subject, Usage::kCa, validity);
  if (!s) return s.error();
  return cert_pem(cert.get());
}

Result<std::string> issue(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                          const std::string& public_der, const Subject& subject, Usage usage,
                          std::chrono::hours validity) {
  auto ca = load_cert(ca_cert_pem);
  if (!ca) return ca.error();
  auto ca_key = load_key(ca_key_pem);
  if (!ca_key) return ca_key.error();
  if (X509_check_private_key(ca->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return Error(Errc::kConfigInvalid, "the CA key does not belong to the CA certificate");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(public_der.data());
  Key pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(public_der.size())));
  if (!pub || p != reinterpret_cast<const unsigned char*>(public_der.data()) + public_der.size()) {
    ERR_clear_error();
    return Error(Errc::kConfigInvalid, "not a DER public key");
  }
  const int type = EVP_PKEY_get_base_id(pub.get());
  if (type == EVP_PKEY_EC) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pub.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) != 1 ||
        std::string(group, len) != "prime256v1") {
      ERR_clear_error();
      return Error(Errc::kConfigInvalid, "EC keys must be P-256");
    }
  } else if (type != EVP_PKEY_ED25519) {
    return Error(Errc::kConfigInvalid, "keys must be EC P-256 or Ed25519");
  }
  Cert cert(X509_new());
  if (!cert || X509_set_pubkey(cert.get(), pub.get()) != 1) {
    return Error(Errc::kInternal, openssl_error());
  }
  auto s = finish(cert.get(), ca->get(), ca_key->get(), subject, usage, validity);
  if (!s) return s.error();
  return cert_pem(cert.get());
}

Result<std::string> dh_params() {
  KeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_paramgen_init(ctx.get()) <= 0) {
    return Error(Errc::kInternal, "DH parameters: " + openssl_error());
  }
  char group[] = "ffdhe2048";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0), OSSL_PARAM_END};
  if (EVP_PKEY_CTX_set_params(ctx.get(), params) <= 0 || EVP_PKEY_paramgen(ctx.get(), &raw) <= 0) {
    return Error(Errc::kInternal, "DH parameters: " + openssl_error());
  }
  Key key(raw);
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_Parameters(out.get(), key.get()) != 1) {
    return Error(Errc::kInternal, "writing DH parameters: " + openssl_error());
  }
  return bio_text(out.get());
}

Result<CertInfo> inspect(const std::string& pem) {
  auto cert = load_cert(pem);
  if (!cert) return cert.error();
  CertInfo info;
  X509_NAME* name = X509_get_subject_name(cert->get());
  const int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i >= 0) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    info.common_name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<std::size_t>(ASN1_STRING_length(s)));
  }
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert->get()), &tm) == 1) info.not_after = timegm(&tm);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert->get(), EVP_sha256(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int k = 0; k < len; ++k) {
    info.fingerprint.push_back(kHex[md[k] >> 4]);
    info.fingerprint.push_back(kHex[md[k] & 0xf]);
  }
  return info;
}

Status verify(const std::string& ca_pem, const std::string& pem) {
  auto ca = load_cert(ca_pem);
  if (!ca) return ca.error();
  auto cert = load_cert(pem);
  if (!cert) return cert.error();
  Store store(X509_STORE_new());
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca->get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr) != 1) {
    return Error(Errc::kInternal, openssl_error());
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Error(Errc::kDenied, X509_verify_cert_error_string(err));
  }
  return {};
}

bool key_matches(const std::string& pem, const std::string& key_pem) {
  auto cert = load_cert(pem);
  auto key = load_key(key_pem);
  if (!cert || !key) return false;
  const bool ok = X509_check_private_key(cert->get(), key->get()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace layerswarm::pki
