#include "common/duration.h"

#include <charconv>
#include <cstdint>
#include <limits>

namespace layerswarm {

Result<Millis> parse_duration(std::string_view text) {
  if (text.empty()) return Error(Errc::kConfigInvalid, "empty duration");
  std::int64_t total = 0;
  std::string_view s = text;
  bool bare = true;
  while (!s.empty()) {
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || n < 0) {
      return Error(Errc::kConfigInvalid, "invalid duration '" + std::string(text) + "'");
    }
    s.remove_prefix(static_cast<std::size_t>(ptr - s.data()));
    std::int64_t unit = 1000;  // a bare number means seconds
    if (s.substr(0, 2) == "ms") {
      unit = 1, s.remove_prefix(2);
    } else if (!s.empty() && s.front() == 's') {
      unit = 1000, s.remove_prefix(1);
    } else if (!s.empty() && s.front() == 'm') {
      unit = 60'000, s.remove_prefix(1);
    } else if (!s.empty() && s.front() == 'h') {
      unit = 3'600'000, s.remove_prefix(1);
    } else if (!s.empty() && s.front() == 'd') {
      unit = 86'400'000, s.remove_prefix(1);
    } else if (!s.empty() || !bare) {
      return Error(Errc::kConfigInvalid, "invalid duration unit in '" + std::string(text) + "'");
    }
    bare = false;
    if (n > (std::numeric_limits<std::int64_t>::max() - total) / unit) {
      return Error(Errc::kConfigInvalid, "duration too large: '" + std::string(text) + "'");
    }
    total += n * unit;
  }
  return Millis(total);
}

std::string format_duration(Millis d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  constexpr std::pair<std::int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& [size, name] : kUnits) {
    if (ms >= size) {
      out += std::to_string(ms / size) + name;
      ms %= size;
    }
  }
  return out;
}

}  // namespace layerswarm
