// Upstream selection (PROTOCOL.md 1): the registry a request names through `ns=` or a path
// prefix, else the configured default; one RegistryClient (connections, tokens) per registry,
// created on first use. Clients of registries missing from the table are bounded
// (kMaxUnlisted, least recently used evicted) so that requests naming many registries cannot
// grow memory without limit.
//
// Threading: the io_context thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/mirror/options.h"
#include "common/registry_client.h"

namespace layerswarm::mirror {

struct UpstreamTarget {
  std::string registry;  // canonical name: the namespace of tags in the cache
  // Shared: a request keeps its client alive even if the client is evicted meanwhile.
  std::shared_ptr<RegistryClient> client;
  // Tried when `client` (a supernode) cannot answer: the registry itself. May be null.
  std::shared_ptr<RegistryClient> fallback;
};

// A supernode that mirrors every registry: requests go to `url` with ?ns=<registry> and the
// cluster token as a bearer token.
struct Via {
  Url url;
  std::string token;
  std::string ca_file;
  bool insecure_skip_verify = false;
};

// Sends `call` to target.client; when that fails in a way the next source should try (no
// answer, 5xx, 429, 401/403: see is_handover_error) and a fallback exists, sends it there.
// With a fallback, the first attempt gets at most half of the time left.
struct Fetched {
  std::unique_ptr<ClientResponse> response;
  std::string source;  // "supernode" or "upstream": who answered
};
Task<Result<Fetched>> fetch_with_fallback(UpstreamTarget target, UpstreamCall call);

// "supernode" for a client that reaches registries through a supernode, else "upstream".
std::string source_name(const RegistryClient& client);

class Upstreams {
 public:
  // With `via`, every registry is reached through that supernode.
  Upstreams(asio::any_io_executor executor, const MirrorOptions& options, const Clock& clock,
            std::optional<Via> via = std::nullopt);

  // Targets resolved here get `fallback`'s client for the same registry as their fallback.
  void set_fallback(Upstreams* fallback) { fallback_ = fallback; }
  ~Upstreams();

  // `requested` as the request named it, "" for the default upstream.
  // Errors: kDenied when the registry is not in the table and unlisted registries are off.
  Result<UpstreamTarget> resolve(std::string_view requested);

  const std::string& default_registry() const { return default_name_; }
  // Whether registries are reached through a supernode.
  bool through_supernode() const { return via_.has_value(); }
  // The registry's entry as configured here (`name` canonical).
  RegistryEntry entry(const std::string& name) const { return registries_.lookup(name); }
  // A one-off client of the registry itself (never through a supernode) that sends a client's
  // own credential, `authorization` (the header value it sent us: Basic or Bearer), instead of
  // ours (docs/security.md "Client credentials").
  std::shared_ptr<RegistryClient> client_with(const std::string& name,
                                              std::string_view authorization);
  std::size_t clients() const { return clients_.size(); }

  static constexpr std::size_t kMaxUnlisted = 64;

 private:
  struct Slot {
    std::shared_ptr<RegistryClient> client;
    std::uint64_t last_use = 0;
    bool listed = false;  // in the registries table (or the default): never evicted
  };

  std::shared_ptr<RegistryClient> client_for(const RegistryEntry& entry, bool listed);
  void evict_unlisted();
  // A registries entry by name, or by URL (origin match), or a new entry named after the
  // URL's host:port.
  std::string default_registry_name(const std::string& upstream);

  asio::any_io_executor executor_;
  Registries registries_;
  bool allow_unlisted_;
  ClientOptions client_options_;
  RetryPolicy retry_;
  const Clock& clock_;
  std::string default_name_;
  std::optional<Via> via_;
  Upstreams* fallback_ = nullptr;
  std::map<std::string, Slot> clients_;
  std::uint64_t uses_ = 0;
  std::size_t unlisted_ = 0;
};

}  // namespace layerswarm::mirror
