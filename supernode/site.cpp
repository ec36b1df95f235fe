#include "supernode/site.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/json_config.h"
#include "common/pki.h"

namespace layerswarm::supernode {
namespace {

constexpr std::chrono::hours kCaValidity{24 * 365 * 10};
constexpr std::chrono::hours kServerValidity{24 * 365 * 2};

Status write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return Error(errno == EEXIST ? Errc::kConfigInvalid : Errc::kStorage,
                 "cannot create " + path + ": " + std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return Error(Errc::kStorage, "writing " + path + ": " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Error(Errc::kStorage, "writing " + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

Result<SiteAuthority> SiteAuthority::load(const std::string& ca_cert_file,
                                          const std::string& ca_key_file,
                                          std::chrono::milliseconds validity) {
  auto cert = read_text_file(ca_cert_file);
  if (!cert) return cert.error();
  auto key = read_text_file(ca_key_file);
  if (!key) return key.error();
  if (!pki::key_matches(*cert, *key)) {
    return Error(Errc::kConfigInvalid,
                 "site.ca_key " + ca_key_file + " is not the key of site.ca_cert " + ca_cert_file);
  }
  auto info = pki::inspect(*cert);
  if (!info) return info.error();
  SiteAuthority site;
  site.ca_cert_ = std::move(*cert);
  site.ca_key_ = std::move(*key);
  site.validity_ = std::chrono::duration_cast<std::chrono::hours>(validity);
  return site;
}

Result<MemberCertificate> SiteAuthority::issue_member(const std::string& public_der) const {
  // Common name "*" and no subject alternative names: libtorrent accepts a peer whose name is
  // "*" for any torrent, and with no SAN extension its check allocates nothing (libtorrent
  // 2.0.8 leaks the decoded SAN list on every verified connection).
  pki::Subject subject{"*", {}, {}};
  auto cert = pki::issue(ca_cert_, ca_key_, public_der, subject, pki::Usage::kMember, validity_);
  if (!cert) return cert.error();
  auto info = pki::inspect(*cert);
  if (!info) return info.error();
  return MemberCertificate{std::move(*cert), info->not_after, info->fingerprint};
}

Status init_site(const SiteFiles& files) {
  if (files.names.empty() && files.ips.empty()) {
    return Error(Errc::kConfigInvalid, "name the supernode: at least one --name or --ip");
  }
  if (::mkdir(files.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error(Errc::kStorage, "cannot create " + files.dir + ": " + std::strerror(errno));
  }
  for (const char* name : {"ca.pem", "ca.key", "supernode.pem", "supernode.key", "token"}) {
    struct stat st {};
    const std::string path = files.dir + "/" + name;
    if (::stat(path.c_str(), &st) == 0) {
      return Error(Errc::kConfigInvalid, path + " exists: a site is created once");
    }
  }
  auto ca_key = pki::generate_key();
  if (!ca_key) return ca_key.error();
  auto ca = pki::make_ca(*ca_key, "layerswarm site CA", kCaValidity);
  if (!ca) return ca.error();
  auto key = pki::generate_key();
  if (!key) return key.error();
  auto pub = pki::public_key_der(*key);
  if (!pub) return pub.error();
  // "*": the supernode's certificate also admits it to the swarm's SSL torrents, and libtorrent
  // checks an https tracker's certificate the way it checks a peer's.
  pki::Subject subject{"layerswarm supernode", files.names, files.ips};
  subject.dns.push_back("*");
  auto cert = pki::issue(*ca, *ca_key, *pub, subject, pki::Usage::kServer, kServerValidity);
  if (!cert) return cert.error();
  unsigned char secret[32];
  if (RAND_bytes(secret, sizeof secret) != 1) return Error(Errc::kInternal, "no randomness");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char c : secret) {
    token.push_back(kHex[c >> 4]);
    token.push_back(kHex[c & 0xf]);
  }
  token.push_back('\n');
  const std::string& d = files.dir;
  Status s = write_new_file(d + "/ca.key", *ca_key, 0600);
  if (s) s = write_new_file(d + "/ca.pem", *ca, 0644);
  if (s) s = write_new_file(d + "/supernode.key", *key, 0600);
  if (s) s = write_new_file(d + "/supernode.pem", *cert, 0644);
  if (s) s = write_new_file(d + "/token", token, 0600);
  return s;
}

}  // namespace layerswarm::supernode
