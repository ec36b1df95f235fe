// The operational endpoints of every node (docs/operations.md): GET /metrics (Prometheus text
// format, common/metrics.h), GET /healthz (the process answers) and GET /readyz (it serves:
// 503 while draining). On the node's listener (the supernode asks for its token on /metrics)
// and, with `metrics_listen`, on a listener of their own that serves nothing else.
//
// Threading: the io_context thread.
#pragma once

#include <functional>
#include <string_view>

#include "common/http_server.h"

namespace layerswarm::mirror {

// Whether `target` is /metrics, /healthz or /readyz (a query string allowed).
bool is_operational_path(std::string_view target);

// GET /api/v1/status: the node's role, version, uptime and every sampled metric without
// labels (cache, downloads, swarm, upstreams), as JSON (docs/operations.md "Status").
inline constexpr std::string_view kStatusPath = "/api/v1/status";
std::string status_json(std::string_view role);

// Answers an operational request. `ready()`: whether the node is ready (not draining).
Task<void> serve_operational(const HttpRequest& request, ResponseWriter& out, bool ready);

// A handler for the metrics listener: the operational endpoints, 404 for anything else.
class OperationsHandler final : public HttpHandler {
 public:
  explicit OperationsHandler(std::function<bool()> ready) : ready_(std::move(ready)) {}
  Task<void> handle(HttpRequest request, ResponseWriter& out) override;

 private:
  std::function<bool()> ready_;
};

}  // namespace layerswarm::mirror
