#include "common/range.h"

#include <charconv>

namespace layerswarm {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

RangeRequest parse_range(std::optional<std::string_view> header, std::uint64_t size) {
  RangeRequest whole;
  RangeRequest unsatisfiable{RangeRequest::Kind::kUnsatisfiable, {}};
  if (!header) return whole;
  std::string_view h = trim(*header);
  constexpr std::string_view kUnit = "bytes=";
  if (h.substr(0, kUnit.size()) != kUnit) return whole;  // another unit: ignore (RFC 9110)
  h = trim(h.substr(kUnit.size()));
  if (h.find(',') != std::string_view::npos) return whole;  // several ranges: serve all
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return unsatisfiable;
  const std::string_view a = trim(h.substr(0, dash));
  const std::string_view b = trim(h.substr(dash + 1));

  if (a.empty()) {  // suffix: the last n bytes
    const auto n = parse_u64(b);
    if (!n || *n == 0 || size == 0) return unsatisfiable;
    const std::uint64_t len = *n < size ? *n : size;
    return {RangeRequest::Kind::kPartial, {size - len, size - 1}};
  }
  const auto first = parse_u64(a);
  if (!first) return unsatisfiable;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!b.empty()) {
    const auto parsed = parse_u64(b);
    if (!parsed || *parsed < *first) return unsatisfiable;
    if (*parsed < last) last = *parsed;
  }
  if (*first >= size) return unsatisfiable;
  return {RangeRequest::Kind::kPartial, {*first, last}};
}

std::string content_range(const ByteRange& range, std::uint64_t size) {
  return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
         std::to_string(size);
}

}  // namespace layerswarm
