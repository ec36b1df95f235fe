// The OCI distribution grammar (PROTOCOL.md 3) and the parsing of a mirror request target
// into a Route: which upstream registry, which repository, which tag or digest.
// Pure functions; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/result.h"

namespace layerswarm {

// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 chars.
bool is_valid_name(std::string_view name);
// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
bool is_valid_tag(std::string_view tag);
// A registry host as clients write it: `host`, `host:port`, `[v6]:port`; lowercase letters only.
bool is_valid_registry_host(std::string_view host);

// Docker Hub has three names; the cache and the registries table know it as "docker.io".
// Returns the lowercased host, with index.docker.io / registry-1.docker.io -> docker.io.
std::string canonical_registry(std::string_view host);
// On docker.io a one-component name means an official image: "busybox" -> "library/busybox".
std::string canonical_name(std::string_view registry, std::string_view name);

// Decodes %XX escapes and '+' (query strings only). Returns nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

struct Route {
  enum class Kind {
    kPing,      // /v2/
    kManifest,  // /v2/<name>/manifests/<reference>
    kBlob,      // /v2/<name>/blobs/<digest>
    kTagsList,  // /v2/<name>/tags/list
  };
  Kind kind = Kind::kPing;
  // The upstream named by the request: `ns=` (containerd) or a first path component holding a
  // '.' or ':' (`/v2/ghcr.io/org/app/...`). Empty: the default upstream. Not canonicalised.
  std::string registry;
  std::string name;              // repository, grammar-checked
  std::string tag;               // manifests by tag
  std::optional<Digest> digest;  // manifests by digest, blobs
  std::string query;             // the raw query string (tags/list paging)
};

// An image reference as people write it: "alpine", "alpine:3.19", "library/alpine@sha256:..",
// "registry.corp:5000/team/app:v2", "ghcr.io/org/app:v1@sha256:..". The first component is
// the registry when it holds a '.' or a ':' or is "localhost"; else `registry` is empty (the
// default upstream). Without a tag or digest the tag is "latest". Not canonicalised.
struct ImageReference {
  std::string registry;
  std::string name;
  std::string tag;  // may be set together with digest (the digest wins)
  std::optional<Digest> digest;
  std::string str() const;
};
// Errors: kNameInvalid, kTagInvalid, kDigestInvalid (naming the reference).
Result<ImageReference> parse_image_reference(std::string_view text);

// Parses `target` (path and query) of a request with `method`.
// Errors: kNotFound (not an API path), kUnsupported (push, delete, catalog),
// kMethodNotAllowed, kNameInvalid, kDigestInvalid, kManifestUnknown (a tag outside the grammar),
// kNameInvalid for a malformed `ns`.
Result<Route> parse_route(std::string_view method, std::string_view target);

}  // namespace layerswarm
