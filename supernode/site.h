// A closed site's authority on the supernode (docs/security.md): the site CA's certificate
// and key, which sign a member certificate for every agent that proves membership with the
// cluster token, and `init_site`, which creates a new site's CA, supernode certificate and token.
//
// Threading: any thread (pure functions over the loaded PEM text).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace layerswarm::supernode {

struct MemberCertificate {
  std::string certificate;   // PEM
  std::int64_t expires = 0;  // unix seconds
  std::string fingerprint;   // SHA-256 of the certificate, hex (for logs)
};

class SiteAuthority {
 public:
  // Reads and checks the CA files. Errors: kConfigInvalid (unreadable, key not the CA's).
  static Result<SiteAuthority> load(const std::string& ca_cert_file, const std::string& ca_key_file,
                                    std::chrono::milliseconds validity);

  const std::string& ca_certificate() const { return ca_cert_; }
  // A member certificate for the public key `public_der` (DER SubjectPublicKeyInfo), named "*"
  // (libtorrent's SSL torrents accept that name for any torrent).
  // Errors: kConfigInvalid (not a P-256 or Ed25519 public key), kInternal.
  Result<MemberCertificate> issue_member(const std::string& public_der) const;

 private:
  std::string ca_cert_;
  std::string ca_key_;
  std::chrono::hours validity_{24};
};

struct SiteFiles {
  std::string dir;
  std::vector<std::string> names;  // the supernode's DNS names (its certificate's SANs)
  std::vector<std::string> ips;    // and IP addresses
};

// Creates `dir` with ca.pem, ca.key, supernode.pem, supernode.key and token (keys and token
// mode 0600), never overwriting a file. Errors: kConfigInvalid (exists, no name), kStorage.
Status init_site(const SiteFiles& files);

}  // namespace layerswarm::supernode
