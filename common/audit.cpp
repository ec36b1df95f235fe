#include "common/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/encoding.h"

namespace layerswarm {
namespace {

int g_audit_fd = -1;

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

Status open_audit_log(const std::string& path) {
  if (g_audit_fd >= 0) ::close(g_audit_fd);
  g_audit_fd = -1;
  if (path.empty()) return {};
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Error(Errc::kConfigInvalid,
                 "cannot open audit_log " + path + ": " + std::strerror(errno));
  }
  g_audit_fd = fd;
  return {};
}

bool audit_enabled() { return g_audit_fd >= 0; }

std::string audit_identity(std::string_view authorization) {
  if (authorization.empty()) return "anonymous";
  if (starts_with(authorization, "Basic ")) {
    const auto credentials = decode_basic_credentials(authorization.substr(6));
    return credentials ? "user:" + credentials->username : "unknown";
  }
  if (starts_with(authorization, "Bearer ")) {
    const std::string_view token = authorization.substr(7);
    Hasher h(Digest::Algorithm::kSha256);
    h.update(token.data(), token.size());
    return "token:" + std::string(h.finish().hex().substr(0, 16));
  }
  return "unknown";
}

void audit(const RequestLog& r) {
  if (g_audit_fd < 0) return;
  const bool pull = starts_with(r.object, "manifests/") || starts_with(r.object, "blobs/");
  const bool refused = r.status == 401 || r.status == 403;
  if (!pull && !refused) return;
  std::string reference;
  std::string kind;
  if (const auto slash = r.object.find('/'); pull && slash != std::string::npos) {
    kind = r.object.substr(0, slash);
    reference = r.object.substr(slash + 1);
  }
  nlohmann::json line = {
      {"time", utc_now()},
      {"remote", r.remote},
      {"identity", r.identity.empty() ? "anonymous" : r.identity},
      {"method", r.method},
      {"registry", r.registry},
      {"repository", r.repository},
      {"kind", kind.empty() ? r.object : kind},
      {"reference", reference},
      {"decision", r.status >= 200 && r.status < 400 ? "served" : "refused"},
      {"status", r.status},
      {"source", r.source.empty() ? "-" : r.source},
      {"bytes", r.bytes},
  };
  if (!r.error.empty()) line["reason"] = r.error;
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const ssize_t n = ::write(g_audit_fd, text.data(), text.size());
  (void)n;  // an audit line that cannot be written is not worth failing the request
}

}  // namespace layerswarm
