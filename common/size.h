// Sizes in configuration files: a bare number of bytes, a number with a unit ("512MiB",
// "20GiB", "1.5GB", "100M"; binary units are powers of 1024, decimal ones of 1000, a single
// letter means the binary unit), or a share of a whole ("85%"). Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace layerswarm {

struct SizeSpec {
  std::uint64_t bytes = 0;  // when !is_share
  double share = 0;         // 0 < share <= 1, when is_share
  bool is_share = false;
  // The size against `whole` (the filesystem, or the budget).
  std::uint64_t of(std::uint64_t whole) const {
    return is_share ? static_cast<std::uint64_t>(static_cast<double>(whole) * share) : bytes;
  }
};

// Errors: kConfigInvalid for an empty, negative, unknown-unit, over-100% or overflowing value.
Result<SizeSpec> parse_size(std::string_view text);

// "1.5 GiB", "300 MiB", "12 KiB", "17 B": for logs.
std::string format_size(std::uint64_t bytes);

}  // namespace layerswarm
