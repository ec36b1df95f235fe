// Durations in configuration files: "250ms", "30s", "5m", "1h30m", "7d", or a bare number of
// seconds. Pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace layerswarm {

using Millis = std::chrono::milliseconds;

// Errors: kConfigInvalid for an empty, negative, unit-less-with-fraction or overflowing value.
Result<Millis> parse_duration(std::string_view text);

// The shortest exact rendering: 90000ms -> "1m30s", 0 -> "0s".
std::string format_duration(Millis d);

}  // namespace layerswarm
