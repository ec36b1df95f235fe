// URLs, redirects, durations, sizes, digests, image references, query strings, agent
// registrations, percent- and base64-decoding, Basic credentials on arbitrary text.
#include <string>

#include "common/digest.h"
#include "common/duration.h"
#include "common/encoding.h"
#include "common/reference.h"
#include "common/size.h"
#include "common/url.h"
#include "supernode/agents.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto url = layerswarm::Url::parse(text)) {
    if (url->host.empty() || url->port == 0 || url->target.empty()) __builtin_trap();
    auto again = layerswarm::Url::parse(url->str());  // what we print, we can read back
    if (!again || again->str() != url->str()) __builtin_trap();
    (void)url->resolve(text);
  }
  if (auto d = layerswarm::parse_duration(text)) {
    if (d->count() < 0) __builtin_trap();
  }
  if (auto digest = layerswarm::Digest::parse(text)) {
    if (digest->str() != text) __builtin_trap();
  }
  if (auto decoded = layerswarm::base64_decode(text)) {
    if (layerswarm::base64_encode(*decoded) != text && text.find('=') == std::string::npos) {
      __builtin_trap();
    }
  }
  if (auto c = layerswarm::decode_basic_credentials(text)) {
    // The user name never holds the separator; together they are the decoded text.
    if (c->username.find(':') != std::string::npos) __builtin_trap();
    if (c->username + ":" + c->password != *layerswarm::base64_decode(text)) __builtin_trap();
  }
  if (auto s = layerswarm::parse_size(text)) {
    if (s->is_share && (s->share <= 0 || s->share > 1)) __builtin_trap();
    (void)s->of(~std::uint64_t{0} >> 1);
  }
  if (auto ref = layerswarm::parse_image_reference(text)) {
    // What we print, we read back the same.
    auto again = layerswarm::parse_image_reference(ref->str());
    if (!again || again->registry != ref->registry || again->name != ref->name ||
        again->str() != ref->str()) {
      __builtin_trap();
    }
  }
  if (layerswarm::query_params(text).size() > 256) __builtin_trap();
  if (auto r = layerswarm::supernode::parse_registration(text, "10.0.0.1",
                                                         std::chrono::system_clock::now())) {
    if (r->id.empty() || r->address.empty()) __builtin_trap();
  }
  (void)layerswarm::percent_decode(text);
  return 0;
}
