// The mirror's HTTP handler: routes OCI Distribution API requests (PROTOCOL.md) to the
// manifest and blob services, answers errors as OCI error JSON, and logs one line per
// request (STYLE.md 21).
//
// Threading: the io_context thread.
#pragma once

#include <chrono>

#include "common/http_server.h"
#include "common/mirror/blob_service.h"
#include "common/mirror/counters.h"
#include "common/mirror/manifest_service.h"
#include "common/mirror/upstreams.h"
#include "common/reference.h"

namespace layerswarm::mirror {

class Mirror final : public HttpHandler {
 public:
  Mirror(Upstreams& upstreams, ManifestService& manifests, BlobService& blobs, Counters& counters,
         std::chrono::milliseconds response_timeout);

  Task<void> handle(HttpRequest request, ResponseWriter& out) override;

 private:
  Task<void> route(const HttpRequest& request, ResponseWriter& out, RequestLog& log);
  Task<void> serve_manifest(const Route& route, UpstreamTarget target, ResponseWriter& out,
                            RequestLog& log);
  Task<void> serve_tags(const Route& route, UpstreamTarget target, ResponseWriter& out,
                        RequestLog& log);

  Upstreams& upstreams_;
  ManifestService& manifests_;
  BlobService& blobs_;
  Counters& counters_;
  std::chrono::milliseconds response_timeout_;
};

}  // namespace layerswarm::mirror
