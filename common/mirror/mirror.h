// The mirror's HTTP handler: routes OCI Distribution API requests (docs/architecture.md "The
// path of a blob request", "The path of a manifest request") to the manifest and blob
// services, answers errors as OCI error JSON, and logs one line per request
// (docs/configuration.md "Request log").
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>

#include "common/http_server.h"
#include "common/mirror/blob_service.h"
#include "common/mirror/counters.h"
#include "common/mirror/manifest_service.h"
#include "common/mirror/upstreams.h"
#include "common/reference.h"

namespace layerswarm::mirror {

// The header in which an agent forwards its client's own credential to its supernode, for
// registries with authorize_clients (docs/security.md "Client credentials").
inline constexpr const char* kForwardedAuthorization = "Layerswarm-Client-Authorization";

struct MirrorAuth {
  std::chrono::milliseconds ttl{60'000};  // authorize_ttl
  bool honour_forwarded = false;          // a supernode: check kForwardedAuthorization
};

class Mirror final : public HttpHandler {
 public:
  Mirror(Upstreams& upstreams, ManifestService& manifests, BlobService& blobs, Counters& counters,
         MirrorAuth auth, std::chrono::milliseconds response_timeout);

  Task<void> handle(HttpRequest request, ResponseWriter& out) override;
  // Whether /readyz answers ready (false while the node drains).
  void set_ready(std::function<bool()> ready) { ready_ = std::move(ready); }
  // "agent" or "supernode", for GET /api/v1/status.
  void set_role(std::string role) { role_ = std::move(role); }
  // Serves /api/v1/cache* (common/mirror/cache_admin.h).
  void set_cache_admin(HttpHandler* admin) { cache_admin_ = admin; }

 private:
  Task<void> route(const HttpRequest& request, ResponseWriter& out, RequestLog& log);
  Task<void> serve_manifest(const Route& route, UpstreamTarget target, ResponseWriter& out,
                            RequestLog& log);
  Task<void> serve_tags(const Route& route, UpstreamTarget target, ResponseWriter& out,
                        RequestLog& log);
  // authorize_clients (docs/security.md "Client credentials"): whether the client's own
  // credential may read `path` ("manifests/<ref>", "blobs/<digest>", "tags/list") of the
  // repository, as the registry answers a request made with it (cached per credential and
  // repository for authorize_ttl). When not, the answer is sent and false returned.
  Task<bool> authorize(std::string credential, const UpstreamTarget& target,
                       const std::string& repository, const std::string& path, ResponseWriter& out,
                       RequestLog& log);
  Task<void> challenge(const std::string& registry, ResponseWriter& out, RequestLog& log,
                       std::string why);

  struct Decision {
    int status = 0;
    std::chrono::steady_clock::time_point until;
  };

  std::function<bool()> ready_;
  HttpHandler* cache_admin_ = nullptr;
  std::string role_ = "agent";
  Upstreams& upstreams_;
  ManifestService& manifests_;
  BlobService& blobs_;
  Counters& counters_;
  std::chrono::milliseconds response_timeout_;
  MirrorAuth auth_;
  std::map<std::string, Decision> decisions_;  // sha256(credential)|registry|repository
};

}  // namespace layerswarm::mirror
