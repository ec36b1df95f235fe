// Logging (spdlog). One line per request (STYLE.md 21) goes through log_request(); everything
// else through the LOG_* macros. Never log credentials or tokens.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

// Debug arguments (libtorrent alert messages, say) are only built when debug lines are kept.
#define LOG_DEBUG(...)                                                              \
  do {                                                                              \
    if (::spdlog::should_log(::spdlog::level::debug)) ::spdlog::debug(__VA_ARGS__); \
  } while (0)
#define LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)

namespace layerswarm {

// Sets up the default logger: `level` is trace|debug|info|warn|error|off; `file` empty means
// stderr. Errors: kConfigInvalid for an unknown level or an unwritable file.
Status init_logging(std::string_view level, const std::string& file);

// What one request did, logged as one line when the request ends.
struct RequestLog {
  std::string method;
  std::string registry;  // canonical upstream name, "" before routing
  std::string repository;
  std::string object;  // "manifests/<tag|digest>", "blobs/<digest>", "/v2/"
  std::string source;  // cache | upstream | stale | inflight | -
  int status = 0;
  std::uint64_t bytes = 0;
  double millis = 0;
  std::string error;  // message for failures
  std::string remote;
  std::string identity;  // who asked (common/audit.h audit_identity)
};
// The request's log line (info), and its audit line (common/audit.h) when the audit log is on.
void log_request(const RequestLog& r);

}  // namespace layerswarm
