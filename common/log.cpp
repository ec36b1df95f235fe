#include "common/log.h"

#include "common/audit.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace layerswarm {

Status init_logging(std::string_view level, const std::string& file) {
  const auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return Error(Errc::kConfigInvalid, "unknown log level '" + std::string(level) + "'");
  }
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (file.empty()) {
      logger = std::make_shared<spdlog::logger>("layerswarm",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "layerswarm", std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Error(Errc::kConfigInvalid, std::string("cannot open log: ") + e.what());
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return {};
}

namespace {

// Request data reaches the log: control and non-ASCII bytes become \xNN (no forged lines).
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace

void log_request(const RequestLog& r) {
  audit(r);
  if (!spdlog::default_logger_raw()->should_log(spdlog::level::info)) return;
  std::string what;
  for (const std::string* part : {&r.registry, &r.repository, &r.object}) {
    if (part->empty()) continue;
    if (!what.empty()) what += '/';
    what += printable(*part);
  }
  spdlog::info("{} {} source={} status={} bytes={} ms={:.1f} remote={}{}{}{}", printable(r.method),
               what, r.source.empty() ? "-" : r.source, r.status, r.bytes, r.millis, r.remote,
               r.error.empty() ? "" : " error=\"", printable(r.error), r.error.empty() ? "" : "\"");
}

}  // namespace layerswarm
