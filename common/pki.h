// The site's small public-key infrastructure (OpenSSL 3; docs/security.md "The site CA"): one
// CA per site signs the supernode's HTTPS certificate and a member certificate for every
// agent. Member certificates are what libtorrent's SSL torrents require of every peer: signed
// by the CA embedded in the chunk torrent, named "*" (any torrent name). Keys are EC P-256.
// Everything is PEM text in and out.
//
// Threading: pure functions; safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace layerswarm::pki {

// What a certificate is for.
enum class Usage {
  kCa,      // signs the others
  kServer,  // HTTPS server (the supernode's control plane); also a swarm member
  kMember,  // swarm member: TLS client and server of peer connections
};

struct Subject {
  std::string common_name;
  std::vector<std::string> dns;  // subjectAltName DNS entries
  std::vector<std::string> ips;  // subjectAltName IP entries (v4 or v6 text)
};

struct CertInfo {
  std::string common_name;
  std::int64_t not_after = 0;  // unix seconds
  std::string fingerprint;     // SHA-256 of the DER certificate, hex
};

// A new EC P-256 private key (PKCS#8 PEM). Errors: kInternal.
Result<std::string> generate_key();
// The public half of `key_pem` as DER SubjectPublicKeyInfo. Errors: kConfigInvalid.
Result<std::string> public_key_der(const std::string& key_pem);
// A self-signed CA certificate for `key_pem`. Errors: kConfigInvalid (key), kInternal.
Result<std::string> make_ca(const std::string& key_pem, const std::string& common_name,
                            std::chrono::hours validity);
// A certificate for the public key `public_der` (DER SubjectPublicKeyInfo), signed by the CA.
// Errors: kConfigInvalid (CA files, a key that is not EC P-256 or Ed25519), kInternal.
Result<std::string> issue(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                          const std::string& public_der, const Subject& subject, Usage usage,
                          std::chrono::hours validity);
// Diffie-Hellman parameters (the RFC 7919 group ffdhe2048) as PEM: libtorrent's SSL torrents
// take them with every certificate. Errors: kInternal.
Result<std::string> dh_params();
// Reads the first certificate of `cert_pem`. Errors: kConfigInvalid.
Result<CertInfo> inspect(const std::string& cert_pem);
// Whether `cert_pem` was signed by `ca_pem` and is valid now. Errors: kDenied (why),
// kConfigInvalid (unreadable PEM).
Status verify(const std::string& ca_pem, const std::string& cert_pem);
// Whether `key_pem` is the private key of `cert_pem`'s public key.
bool key_matches(const std::string& cert_pem, const std::string& key_pem);

}  // namespace layerswarm::pki
