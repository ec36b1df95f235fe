#include "common/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/reference.h"

namespace layerswarm {

Result<Url> Url::parse(std::string_view text) {
  Url u;
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return Error(Errc::kConfigInvalid, "URL has no scheme");
  u.scheme = std::string(text.substr(0, sep));
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (u.scheme != "http" && u.scheme != "https") {
    return Error(Errc::kConfigInvalid, "URL scheme must be http or https");
  }
  std::string_view rest = text.substr(sep + 3);
  const auto path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view target =
      path_start == std::string_view::npos ? std::string_view("/") : rest.substr(path_start);
  if (const auto hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  if (authority.find('@') != std::string_view::npos) {
    return Error(Errc::kConfigInvalid, "URL must not carry credentials");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Error(Errc::kConfigInvalid, "bad IPv6 host");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error(Errc::kConfigInvalid, "bad URL authority");
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return Error(Errc::kConfigInvalid, "URL has no host");
  // Host names: letters, digits, '-', '.', '_'; IPv6 literals (in brackets): hex, ':', '.'.
  const bool v6 = !authority.empty() && authority.front() == '[';
  for (unsigned char c : u.host) {
    const bool ok = v6 ? (std::isxdigit(c) || c == ':' || c == '.')
                       : (std::isalnum(c) || c == '-' || c == '.' || c == '_');
    if (!ok) return Error(Errc::kConfigInvalid, "bad character in URL host");
  }
  std::transform(u.host.begin(), u.host.end(), u.host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  u.port = u.tls() ? 443 : 80;
  if (!port_text.empty()) {
    unsigned v = 0;
    const auto [ptr, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || v == 0 || v > 65535) {
      return Error(Errc::kConfigInvalid, "bad URL port");
    }
    u.port = static_cast<std::uint16_t>(v);
  }
  u.target = target.empty() ? "/" : std::string(target);
  if (u.target.front() == '?') u.target.insert(u.target.begin(), '/');
  return u;
}

std::string Url::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const bool default_port = (tls() && port == 443) || (!tls() && port == 80);
  return default_port ? h : h + ":" + std::to_string(port);
}

std::string Url::origin() const { return scheme + "://" + authority(); }

Result<Url> Url::resolve(std::string_view location) const {
  if (location.find("://") != std::string_view::npos) return parse(location);
  if (location.substr(0, 2) == "//") return parse(scheme + ":" + std::string(location));
  Url u = *this;
  if (!location.empty() && location.front() == '/') {
    u.target = std::string(location);
  } else {
    // Relative to the current path's directory.
    std::string base = target.substr(0, target.find('?'));
    base = base.substr(0, base.rfind('/') + 1);
    u.target = base + std::string(location);
  }
  return u;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

void Url::add_query(std::string_view key, std::string_view value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += percent_encode(key);
  target += '=';
  target += percent_encode(value);
}

Result<std::string> with_port(std::string_view address, int port) {
  const auto colon = address.rfind(':');
  const auto bracket = address.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
    return Error(Errc::kConfigInvalid, "address needs a port: '" + std::string(address) + "'");
  }
  if (port < 0 || port > 65535) {
    return Error(Errc::kConfigInvalid, "bad port " + std::to_string(port));
  }
  return std::string(address.substr(0, colon + 1)) + std::to_string(port);
}

std::vector<std::pair<std::string, std::string>> query_params(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < 256 && !query.empty(); ++i) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (key && value && !key->empty()) out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

}  // namespace layerswarm
