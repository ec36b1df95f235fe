// The cache's administration API on agents and supernodes (docs/operations.md "Cache"), what
// `layerswarm cache ls|pin|unpin|rm` calls:
//   GET    /api/v1/cache                        the cached images (tags), pins, use
//   POST   /api/v1/cache/pins?image=REF[&platform=os/arch]...   pin (fetched at once)
//   DELETE /api/v1/cache/pins?image=REF         unpin (run-time pins only)
//   DELETE /api/v1/cache/images?image=REF       remove an image's tag, manifests and blobs
// Allowed from a loopback address, or with `token` (the cluster token) when one is set.
//
// Threading: the io_context thread.
#pragma once

#include <string>

#include "common/http_server.h"
#include "common/log.h"
#include "common/mirror/pins.h"
#include "common/store.h"

namespace layerswarm::mirror {

class CacheAdmin final : public HttpHandler {
 public:
  static constexpr std::string_view kPrefix = "/api/v1/cache";

  CacheAdmin(Store& store, Pinner& pinner, ImageFetcher& images, std::string token);

  static bool handles(std::string_view target);
  Task<void> handle(HttpRequest request, ResponseWriter& out) override;

 private:
  Task<void> list(ResponseWriter& out, RequestLog& log);
  Task<void> remove_image(const ImageReference& image, ResponseWriter& out, RequestLog& log);

  Store& store_;
  Pinner& pinner_;
  ImageFetcher& images_;
  std::string token_;
};

}  // namespace layerswarm::mirror
