#include "common/mirror/cache_admin.h"

#include <set>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/mirror/responses.h"
#include "common/url.h"

namespace layerswarm::mirror {
namespace {

constexpr std::size_t kMaxTags = 100'000;

std::int64_t unix_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool loopback(std::string_view remote) {
  return remote.starts_with("127.") || remote.starts_with("[::1]:") ||
         remote.starts_with("[::ffff:127.");
}

// The digests a cached manifest names: an index's manifests, an image's config and layers.
// Manifests not in the cache add nothing further (their blobs cannot be known offline).
void closure(Store& store, const Digest& root, std::set<std::string>& out, int depth = 0) {
  if (!out.insert(root.str()).second || depth > 2) return;
  auto manifest = store.get_manifest(root);
  if (!manifest) return;
  const auto j = nlohmann::json::parse(manifest->bytes, nullptr, false);
  if (!j.is_object()) return;
  auto add = [&](const nlohmann::json& descriptor, bool recurse) {
    if (!descriptor.is_object() || !descriptor.contains("digest")) return;
    if (!descriptor["digest"].is_string()) return;
    auto d = Digest::parse(descriptor["digest"].get<std::string>());
    if (!d) return;
    if (recurse) {
      closure(store, *d, out, depth + 1);
    } else {
      out.insert(d->str());
    }
  };
  if (j.contains("manifests") && j["manifests"].is_array()) {
    for (const auto& m : j["manifests"]) add(m, true);
  }
  if (j.contains("config")) add(j["config"], false);
  if (j.contains("layers") && j["layers"].is_array()) {
    for (const auto& l : j["layers"]) add(l, false);
  }
}

Result<ImageReference> image_param(std::string_view target, std::vector<std::string>* platforms) {
  const auto q = target.find('?');
  std::string image;
  for (auto& [k, v] : query_params(q == std::string_view::npos ? "" : target.substr(q + 1))) {
    if (k == "image") image = v;
    if (k == "platform" && platforms) {
      if (!valid_platform(v)) return Error(Errc::kNameInvalid, "bad platform '" + v + "'");
      platforms->push_back(v);
    }
  }
  if (image.empty()) return Error(Errc::kNameInvalid, "image= is required");
  return parse_image_reference(image);
}

}  // namespace

CacheAdmin::CacheAdmin(Store& store, Pinner& pinner, ImageFetcher& images, std::string token)
    : store_(store), pinner_(pinner), images_(images), token_(std::move(token)) {}

bool CacheAdmin::handles(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path == kPrefix || path.starts_with(std::string(kPrefix) + "/");
}

Task<void> CacheAdmin::handle(HttpRequest request, ResponseWriter& out) {
  RequestLog log;
  log.method = request.method;
  log.remote = request.remote;
  const std::string path = request.target.substr(0, request.target.find('?'));
  log.object = path;
  const bool allowed =
      loopback(request.remote) ||
      (!token_.empty() && carries_token(request.headers.get("Authorization").value_or(""), token_));
  // A web page the host's browser opens could send a plain POST here (no preflight): a
  // request a browser made (it names its Origin) is refused, whatever its address.
  const bool from_browser = request.headers.get("Origin").has_value();
  if (!allowed || from_browser) {
    Error refused(Errc::kDenied,
                  from_browser ? "the cache is not administered from web pages"
                               : "the cache is administered from this host or with the token");
    co_await send_error(out, std::move(refused), log);
    log_request(log);
    co_return;
  }
  if (path == kPrefix && request.method == "GET") {
    co_await list(out, log);
    log_request(log);
    co_return;
  }
  const bool pins = path == std::string(kPrefix) + "/pins";
  const bool images = path == std::string(kPrefix) + "/images";
  if (!(pins && (request.method == "POST" || request.method == "DELETE")) &&
      !(images && request.method == "DELETE")) {
    Error wrong(Errc::kMethodNotAllowed,
                "GET /api/v1/cache, POST|DELETE /api/v1/cache/pins?image=, "
                "DELETE /api/v1/cache/images?image=");
    co_await send_error(out, std::move(wrong), log);
    log_request(log);
    co_return;
  }
  std::vector<std::string> platforms;
  auto image = image_param(request.target, &platforms);
  if (!image) {
    co_await send_error(out, image.error(), log);
    log_request(log);
    co_return;
  }
  if (images) {
    co_await remove_image(*image, out, log);
    log_request(log);
    co_return;
  }
  Status done =
      request.method == "POST" ? pinner_.add(PinSpec{*image, platforms}) : pinner_.remove(*image);
  if (!done) {
    co_await send_error(out, done.error(), log);
    log_request(log);
    co_return;
  }
  ResponseHead head;
  head.status = request.method == "POST" ? 202 : 204;  // POST: being fetched
  head.headers.add("Content-Type", "application/json");
  const std::string body =
      request.method == "POST" ? nlohmann::json{{"image", image->str()}}.dump() : std::string();
  co_await send_body(out, std::move(head), body, log);
  log_request(log);
}

Task<void> CacheAdmin::list(ResponseWriter& out, RequestLog& log) {
  nlohmann::json images = nlohmann::json::array();
  const auto tags = store_.tags(kMaxTags);
  for (const auto& t : tags) {
    std::set<std::string> digests;
    closure(store_, t.record.digest, digests);
    std::uint64_t bytes = 0;
    std::size_t present = 0, blobs = 0;
    for (const auto& d : digests) {
      auto digest = Digest::parse(d);
      if (!digest || store_.get_manifest(*digest)) continue;
      ++blobs;
      if (auto size = store_.blob_size(*digest)) {
        ++present;
        bytes += *size;
      }
    }
    images.push_back({{"registry", t.registry},
                      {"repository", t.repository},
                      {"tag", t.tag},
                      {"digest", t.record.digest.str()},
                      {"media_type", t.record.media_type},
                      {"validated", unix_ms(t.record.validated)},
                      {"pinned", store_.tag_pinned(t.registry, t.repository, t.tag)},
                      {"blobs", blobs},
                      {"blobs_cached", present},
                      {"bytes_cached", bytes}});
  }
  nlohmann::json pins = nlohmann::json::array();
  for (const auto& p : pinner_.list()) {
    pins.push_back({{"image", p.image}, {"platforms", p.platforms}, {"configured", p.configured}});
  }
  const std::string body = nlohmann::json{
      {"used_bytes", store_.used_bytes()},
      {"writable", store_.writable()},
      {"images", std::move(images)},
      {"truncated", tags.size() >= kMaxTags},
      {"pins",
       std::move(pins)}}.dump();
  ResponseHead head;
  head.headers.add("Content-Type", "application/json");
  head.headers.add("Cache-Control", "no-store");
  co_await send_body(out, std::move(head), body, log);
}

// Removes the image's tag, then every manifest and blob of it that no other cached tag names
// and that is neither pinned nor being sent. Offline: only what the cache knows is looked at.
Task<void> CacheAdmin::remove_image(const ImageReference& image, ResponseWriter& out,
                                    RequestLog& log) {
  std::optional<Digest> root = image.digest;
  std::string registry, repository;
  if (!root) {
    auto key = images_.tag_key(image);
    if (!key) {
      Error bad(Errc::kNameInvalid, "cannot resolve the registry of " + image.str());
      co_await send_error(out, std::move(bad), log);
      co_return;
    }
    const auto first = key->find('|'), last = key->rfind('|');
    registry = key->substr(0, first);
    repository = key->substr(first + 1, last - first - 1);
    if (store_.tag_pinned(registry, repository, image.tag)) {
      Error pinned(Errc::kDenied, image.str() + " is pinned: unpin it first");
      co_await send_error(out, std::move(pinned), log);
      co_return;
    }
    if (auto tag = store_.get_tag(registry, repository, image.tag)) root = tag->digest;
  }
  if (!root || (!store_.get_manifest(*root) && !store_.blob_size(*root))) {
    Error unknown(Errc::kManifestUnknown, image.str() + " is not in this cache");
    co_await send_error(out, std::move(unknown), log);
    co_return;
  }
  if (!image.digest) {
    if (auto s = store_.delete_tag(registry, repository, image.tag); !s) {
      co_await send_error(out, s.error(), log);
      co_return;
    }
  }
  std::set<std::string> mine, others;
  closure(store_, *root, mine);
  for (const auto& t : store_.tags(kMaxTags)) closure(store_, t.record.digest, others);
  std::uint64_t removed = 0, removed_bytes = 0, shared = 0;
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& d : mine) {
    if (others.count(d)) {
      ++shared;
      continue;
    }
    auto digest = Digest::parse(d);
    if (!digest) continue;
    const auto size = store_.blob_size(*digest);
    auto gone = store_.remove(*digest);
    if (!gone) {
      co_await send_error(out, gone.error(), log);
      co_return;
    }
    if (*gone) {
      ++removed;
      removed_bytes += size.value_or(0);
    } else {
      kept.push_back(d);
    }
  }
  ResponseHead head;
  head.headers.add("Content-Type", "application/json");
  const std::string body = nlohmann::json{
      {"image", image.str()},
      {"removed", removed},
      {"removed_bytes", removed_bytes},
      {"shared", shared},
      {"kept_in_use",
       std::move(kept)}}.dump();
  co_await send_body(out, std::move(head), body, log);
}

}  // namespace layerswarm::mirror
