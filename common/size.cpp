#include "common/size.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace layerswarm {
namespace {

struct Unit {
  std::string_view name;
  double factor;
};

constexpr Unit kUnits[] = {
    {"", 1},
    {"B", 1},
    {"K", 1024.0},
    {"KiB", 1024.0},
    {"KB", 1e3},
    {"M", 1048576.0},
    {"MiB", 1048576.0},
    {"MB", 1e6},
    {"G", 1073741824.0},
    {"GiB", 1073741824.0},
    {"GB", 1e9},
    {"T", 1099511627776.0},
    {"TiB", 1099511627776.0},
    {"TB", 1e12},
};

}  // namespace

Result<SizeSpec> parse_size(std::string_view text) {
  const auto bad = [&](const char* why) {
    return Error(Errc::kConfigInvalid, "invalid size '" + std::string(text) + "': " + why);
  };
  if (text.empty() || text.size() > 64) return bad("expected a size like \"20GiB\" or \"85%\"");
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  const std::string number(text.substr(0, i));
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (number.empty() || number.front() == '.' || number.back() == '.' ||
      number.find('.') != number.rfind('.')) {
    return bad("expected a number");
  }
  const double value = std::strtod(number.c_str(), nullptr);
  if (!std::isfinite(value)) return bad("expected a number");
  SizeSpec spec;
  if (unit == "%") {
    if (value <= 0 || value > 100) return bad("a share must be above 0% and at most 100%");
    spec.is_share = true;
    spec.share = value / 100.0;
    return spec;
  }
  for (const Unit& u : kUnits) {
    if (u.name != unit) continue;
    const double bytes = value * u.factor;
    if (bytes >= 9.2e18) return bad("too large");
    if (u.factor == 1 && number.find('.') != std::string::npos) return bad("bytes are whole");
    spec.bytes = static_cast<std::uint64_t>(std::llround(bytes));
    return spec;
  }
  return bad("unknown unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB or %)");
}

std::string format_size(std::uint64_t bytes) {
  constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kNames[u]);
  }
  return buf;
}

}  // namespace layerswarm
