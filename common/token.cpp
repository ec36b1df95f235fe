#include "common/token.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

namespace layerswarm {

using nlohmann::json;

namespace {

// "2024-01-02T03:04:05.678Z" or with a "+01:00" offset.
std::optional<TimePoint> parse_rfc3339(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  // Years past 2200 would overflow the nanosecond time_point: not a plausible issue time.
  if (tm.tm_year < 1970 || tm.tm_year > 2200) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  long offset = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int h = 0, m = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &h, &m) != 2 || h > 23 || m > 59) {
      return std::nullopt;
    }
    offset = (s[i] == '+' ? 1 : -1) * (h * 3600L + m * 60L);
  } else if (i >= s.size() || (s[i] != 'Z' && s[i] != 'z')) {
    return std::nullopt;
  }
  const time_t t = timegm(&tm);
  if (t == -1) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t - offset);
}

std::string last_two_labels(const std::string& host) {
  const auto last = host.rfind('.');
  if (last == std::string::npos || last == 0) return host;
  const auto prev = host.rfind('.', last - 1);
  return prev == std::string::npos ? host : host.substr(prev + 1);
}

bool is_ip(const std::string& host) {
  return host.find(':') != std::string::npos ||
         host.find_first_not_of("0123456789.") == std::string::npos;
}

}  // namespace

Result<Token> parse_token_response(std::string_view body, TimePoint now) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error(Errc::kBadUpstreamResponse, "token response is not a JSON object");
  }
  Token t;
  for (const char* key : {"token", "access_token"}) {
    if (j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()) {
      t.value = j[key].get<std::string>();
      break;
    }
  }
  if (t.value.empty()) return Error(Errc::kBadUpstreamResponse, "token response has no token");
  // 60 s when absent; clamped to [60 s, 24 h] (a longer-lived token is fetched again daily).
  std::int64_t expires_in = 60;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    expires_in = std::clamp<std::int64_t>(j["expires_in"].get<std::int64_t>(), 60, 86'400);
  }
  TimePoint issued = now;
  if (j.contains("issued_at") && j["issued_at"].is_string()) {
    // A skewed clock must not make a fresh token look expired: trust issued_at only when it
    // is not in the future and not older than the lifetime.
    if (auto at = parse_rfc3339(j["issued_at"].get<std::string>())) {
      if (*at <= now && now - *at < std::chrono::seconds(expires_in)) issued = *at;
    }
  }
  t.expires = issued + std::chrono::seconds(expires_in);
  return t;
}

bool realm_may_get_credentials(const Url& realm, const Url& registry) {
  if (realm.scheme == "http" && registry.scheme == "https") return false;
  if (realm.host == registry.host) return true;
  if (is_ip(realm.host) || is_ip(registry.host)) return false;
  const std::string domain = last_two_labels(registry.host);
  return domain.find('.') != std::string::npos && last_two_labels(realm.host) == domain;
}

}  // namespace layerswarm
