#include "common/mirror/operations.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "layerswarm_version.h"

namespace layerswarm::mirror {
namespace {

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

Task<void> plain(ResponseWriter& out, int status, std::string_view content_type,
                 std::string_view body) {
  ResponseHead head;
  head.status = status;
  head.headers.add("Content-Type", std::string(content_type));
  head.headers.add("Cache-Control", "no-store");
  co_await out.write_whole(std::move(head), body);
}

// When the process started (static initialisation), for the uptime.
const auto started = std::chrono::steady_clock::now();

}  // namespace

std::string status_json(std::string_view role) {
  nlohmann::json j;
  j["role"] = role;
  j["version"] = LAYERSWARM_VERSION;
  j["uptime_seconds"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
          .count();
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, value] : Metrics::get().snapshot()) metrics[name] = value;
  j["metrics"] = std::move(metrics);
  // Labeled counters the status page shows: bytes served by source, upstream requests by
  // registry and code, upstream authentication failures by registry.
  nlohmann::json series = nlohmann::json::object();
  for (const char* family : {"layerswarm_served_bytes_total", "layerswarm_upstream_requests_total",
                             "layerswarm_upstream_auth_failures_total"}) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : Metrics::get().counter_series(family)) {
      nlohmann::json labels = nlohmann::json::object();
      for (const auto& [k, v] : s.labels) labels[k] = v;
      list.push_back({{"labels", std::move(labels)}, {"value", s.value}});
    }
    series[family] = std::move(list);
  }
  j["series"] = std::move(series);
  return j.dump();
}

bool is_operational_path(std::string_view target) {
  const std::string_view path = path_of(target);
  return path == "/metrics" || path == "/healthz" || path == "/readyz";
}

Task<void> serve_operational(const HttpRequest& request, ResponseWriter& out, bool ready) {
  const std::string_view path = path_of(request.target);
  if (request.method != "GET" && request.method != "HEAD") {
    co_await plain(out, 405, "text/plain", "GET only\n");
  } else if (path == "/metrics") {
    const std::string body = Metrics::get().render();
    co_await plain(out, 200, kMetricsContentType, body);
  } else if (path == "/healthz") {
    co_await plain(out, 200, "text/plain", "ok\n");
  } else if (ready) {
    co_await plain(out, 200, "text/plain", "ready\n");
  } else {
    co_await plain(out, 503, "text/plain", "draining\n");
  }
}

Task<void> OperationsHandler::handle(HttpRequest request, ResponseWriter& out) {
  if (!is_operational_path(request.target)) {
    co_await plain(out, 404, "text/plain", "/metrics, /healthz and /readyz only\n");
    co_return;
  }
  co_await serve_operational(request, out, ready_ ? ready_() : true);
}

}  // namespace layerswarm::mirror
