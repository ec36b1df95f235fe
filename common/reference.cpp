#include "common/reference.h"

#include <algorithm>

namespace layerswarm {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool is_valid_component(std::string_view c) {
  std::size_t i = 0;
  const std::size_t n = c.size();
  auto alnum_run = [&] {
    const std::size_t start = i;
    while (i < n && is_lower_alnum(c[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < n) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < n && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < n && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of `key` in a query string, decoded; nullopt when absent.
Result<std::optional<std::string>> query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    if (eq == std::string_view::npos) return std::optional<std::string>(std::string());
    auto value = percent_decode(pair.substr(eq + 1));
    if (!value) return Error(Errc::kNameInvalid, "malformed escape in query string");
    return std::optional<std::string>(std::move(*value));
  }
  return std::optional<std::string>();
}

bool looks_like_registry(std::string_view component) {
  return component.find_first_of(".:") != std::string_view::npos || component == "localhost";
}

}  // namespace

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  std::size_t start = 0;
  while (true) {
    const auto slash = name.find('/', start);
    if (!is_valid_component(name.substr(start, slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool is_valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  if (!(is_alnum(tag[0]) || tag[0] == '_')) return false;
  return std::all_of(tag.begin() + 1, tag.end(),
                     [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
}

bool is_valid_registry_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  std::string_view port;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    const std::string_view addr = host.substr(1, close - 1);
    const bool ok = std::all_of(addr.begin(), addr.end(),
                                [](char c) { return hex_value(c) >= 0 || c == ':' || c == '.'; });
    if (!ok) return false;
    const std::string_view rest = host.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    port = rest.substr(1);
  } else {
    const auto colon = host.find(':');
    const std::string_view name = host.substr(0, colon);
    if (name.empty() || name.front() == '-' || name.front() == '.' || name.back() == '.') {
      return false;
    }
    const bool ok = std::all_of(name.begin(), name.end(),
                                [](char c) { return is_lower_alnum(c) || c == '.' || c == '-'; });
    if (!ok || name.find("..") != std::string_view::npos) return false;
    if (colon == std::string_view::npos) return true;
    port = host.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), is_digit)) {
    return false;
  }
  const unsigned long n = std::stoul(std::string(port));
  return n >= 1 && n <= 65535;  // port 0 names no server (fuzz_config found it crashing lookups)
}

std::string canonical_registry(std::string_view host) {
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  if (h == "index.docker.io" || h == "registry-1.docker.io") return "docker.io";
  return h;
}

std::string canonical_name(std::string_view registry, std::string_view name) {
  if (registry == "docker.io" && name.find('/') == std::string_view::npos) {
    return "library/" + std::string(name);
  }
  return std::string(name);
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string ImageReference::str() const {
  std::string s = registry.empty() ? name : registry + "/" + name;
  if (!tag.empty() && !digest) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

Result<ImageReference> parse_image_reference(std::string_view text) {
  const auto bad = [&](Errc code, const char* what) {
    return Error(
        code, std::string(what) + " in image reference '" + std::string(text.substr(0, 300)) + "'");
  };
  if (text.empty() || text.size() > 1024) return bad(Errc::kNameInvalid, "no name");
  ImageReference ref;
  std::string_view rest = text;
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    auto d = Digest::parse(rest.substr(at + 1));
    if (!d) return bad(Errc::kDigestInvalid, "an invalid digest");
    ref.digest = *d;
    rest = rest.substr(0, at);
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view first = rest.substr(0, slash);
    if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
        first == "localhost") {
      if (!is_valid_registry_host(first)) return bad(Errc::kNameInvalid, "an invalid registry");
      ref.registry = std::string(first);
      rest = rest.substr(slash + 1);
    }
  }
  const auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find('/', colon) == std::string_view::npos) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (!is_valid_tag(ref.tag)) return bad(Errc::kTagInvalid, "an invalid tag");
    rest = rest.substr(0, colon);
  }
  if (!is_valid_name(rest)) return bad(Errc::kNameInvalid, "an invalid repository name");
  ref.name = std::string(rest);
  if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

Result<Route> parse_route(std::string_view method, std::string_view target) {
  const auto qmark = target.find('?');
  const std::string_view path = target.substr(0, qmark);
  const std::string_view query =
      qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
  const bool read = method == "GET" || method == "HEAD";

  if (path == "/v2" || path == "/v2/") {
    if (!read) return Error(Errc::kMethodNotAllowed);
    return Route{};
  }
  if (path.substr(0, 4) != "/v2/") return Error(Errc::kNotFound);
  std::string_view rest = path.substr(4);
  if (rest == "_catalog") return Error(Errc::kUnsupported, "catalog is not served by a mirror");

  Route route;
  route.query = std::string(query);
  std::string_view name;
  std::string_view reference;
  const auto m = rest.rfind("/manifests/");
  const auto b = rest.rfind("/blobs/");
  constexpr std::string_view kTagsList = "/tags/list";
  if (rest.size() > kTagsList.size() && rest.substr(rest.size() - kTagsList.size()) == kTagsList) {
    route.kind = Route::Kind::kTagsList;
    name = rest.substr(0, rest.size() - kTagsList.size());
  } else if (m != std::string_view::npos && (b == std::string_view::npos || m > b)) {
    route.kind = Route::Kind::kManifest;
    name = rest.substr(0, m);
    reference = rest.substr(m + 11);
  } else if (b != std::string_view::npos) {
    route.kind = Route::Kind::kBlob;
    name = rest.substr(0, b);
    reference = rest.substr(b + 7);
    if (reference == "uploads" || reference.substr(0, 8) == "uploads/") {
      return Error(Errc::kUnsupported, "this mirror does not accept pushes");
    }
  } else {
    return Error(Errc::kNotFound);
  }

  if (!read) {
    return Error(method == "PUT" || method == "DELETE" || method == "POST" || method == "PATCH"
                     ? Errc::kUnsupported
                     : Errc::kMethodNotAllowed,
                 "this mirror serves pulls only");
  }

  auto ns = query_param(query, "ns");
  if (!ns) return ns.error();
  if (ns->has_value()) {
    if (!is_valid_registry_host(**ns)) return Error(Errc::kNameInvalid, "invalid ns parameter");
    route.registry = **ns;
  } else {
    const auto slash = name.find('/');
    if (slash != std::string_view::npos && looks_like_registry(name.substr(0, slash))) {
      const std::string_view host = name.substr(0, slash);
      if (!is_valid_registry_host(host))
        return Error(Errc::kNameInvalid, "invalid registry prefix");
      route.registry = std::string(host);
      name = name.substr(slash + 1);
    }
  }
  if (!is_valid_name(name)) return Error(Errc::kNameInvalid, "invalid repository name");
  route.name = std::string(name);

  if (route.kind == Route::Kind::kBlob) {
    auto digest = Digest::parse(reference);
    if (!digest) return digest.error();
    route.digest = std::move(*digest);
  } else if (route.kind == Route::Kind::kManifest) {
    if (reference.find(':') != std::string_view::npos) {
      auto digest = Digest::parse(reference);
      if (!digest) return digest.error();
      route.digest = std::move(*digest);
    } else if (is_valid_tag(reference)) {
      route.tag = std::string(reference);
    } else {
      return Error(Errc::kManifestUnknown, "invalid tag");
    }
  }
  return route;
}

}  // namespace layerswarm
