// The member certificate request's input on arbitrary bytes (docs/security.md): whatever a
// token holder sends as its public key (DER), the supernode issues a certificate only for a
// real P-256 or Ed25519 key, and what it issues verifies against the site CA and names "*";
// PEM readers never crash on garbage.
#include <chrono>
#include <string>

#include "common/pki.h"

namespace pki = layerswarm::pki;

namespace {

struct Site {
  std::string key = *pki::generate_key();
  std::string ca = *pki::make_ca(key, "fuzz CA", std::chrono::hours(1));
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  static const Site site;
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto issued = pki::issue(site.ca, site.key, input, {"*", {}, {}}, pki::Usage::kMember,
                           std::chrono::hours(1));
  if (issued) {
    if (!pki::verify(site.ca, *issued)) __builtin_trap();
    auto info = pki::inspect(*issued);
    if (!info || info->common_name != "*") __builtin_trap();
  }
  (void)pki::inspect(input);
  (void)pki::verify(site.ca, input);
  (void)pki::public_key_der(input);
  return 0;
}
