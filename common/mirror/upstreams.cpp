#include "common/mirror/upstreams.h"

#include "common/encoding.h"
#include "common/log.h"
#include "common/mirror/source_chain.h"
#include "common/reference.h"
#include "layerswarm_version.h"

namespace layerswarm::mirror {

Upstreams::Upstreams(asio::any_io_executor executor, const MirrorOptions& config,
                     const Clock& clock, std::optional<Via> via)
    : executor_(std::move(executor)),
      registries_(config.registries),
      allow_unlisted_(config.allow_unlisted_registries),
      clock_(clock),
      via_(std::move(via)) {
  client_options_.connect_timeout = config.upstream_client.connect_timeout;
  client_options_.read_timeout = config.upstream_client.read_timeout;
  client_options_.user_agent = "layerswarm/" LAYERSWARM_VERSION;
  retry_.attempts = static_cast<int>(config.upstream_client.retries);

  // The default upstream: a registries entry by name, or by URL (origin match), or a new entry
  // named after the URL's host:port.
  default_name_ = default_registry_name(config.upstream);
  // The default upstream serves most requests: its one-time costs are paid at start.
  client_for(registries_.lookup(default_name_), true)->warm_up();
}

std::string Upstreams::default_registry_name(const std::string& upstream) {
  if (upstream.find("://") == std::string::npos) return canonical_registry(upstream);
  const Url url = *Url::parse(upstream);  // validate() checked it
  for (const auto& [name, entry] : registries_.entries()) {
    if (entry.url.origin() == url.origin()) return name;
  }
  const std::string name = canonical_registry(url.authority());
  (void)registries_.set_url(name + "=" + upstream);  // cannot fail: a valid URL
  return name;
}

Upstreams::~Upstreams() = default;

Result<UpstreamTarget> Upstreams::resolve(std::string_view requested) {
  const std::string name = requested.empty() ? default_name_ : canonical_registry(requested);
  const bool listed = name == default_name_ || registries_.contains(name);
  if (!allow_unlisted_ && !listed) {
    return Error(Errc::kDenied, "registry " + name + " is not configured on this mirror");
  }
  UpstreamTarget target{name, client_for(registries_.lookup(name), listed), nullptr};
  if (fallback_) {
    if (auto direct = fallback_->resolve(name)) target.fallback = direct->client;
  }
  return target;
}

std::shared_ptr<RegistryClient> Upstreams::client_for(const RegistryEntry& entry, bool listed) {
  auto it = clients_.find(entry.name);
  if (it == clients_.end()) {
    if (!listed && unlisted_ >= kMaxUnlisted) evict_unlisted();
    RegistryEntry reached = entry;
    if (via_) {  // the supernode stands in for the registry
      reached.url = via_->url;
      reached.ns = entry.name;
      reached.bearer_token = via_->token;
      reached.username.clear();
      reached.password.clear();
      reached.ca_file = via_->ca_file;
      reached.insecure_skip_verify = via_->insecure_skip_verify;
    }
    ClientOptions options = client_options_;
    // A registry nobody configured is named by a client (`?ns=`): it, its redirects and its
    // token realm must not reach the node's own network (docs/security.md "Request forgery").
    // Through the supernode the supernode applies the same rule.
    options.deny_internal = !listed && !via_;
    Slot slot{std::make_shared<RegistryClient>(executor_, reached, options, retry_, clock_), 0,
              listed};
    it = clients_.emplace(entry.name, std::move(slot)).first;
    if (!listed) ++unlisted_;
  }
  it->second.last_use = ++uses_;
  return it->second.client;
}

std::shared_ptr<RegistryClient> Upstreams::client_with(const std::string& name,
                                                       std::string_view authorization) {
  RegistryEntry entry = registries_.lookup(name);
  entry.username.clear();
  entry.password.clear();
  entry.bearer_token.clear();
  entry.ns.clear();
  if (authorization.substr(0, 6) == "Basic ") {
    if (auto credentials = decode_basic_credentials(authorization.substr(6))) {
      entry.username = std::move(credentials->username);
      entry.password = std::move(credentials->password);
    }
  } else if (authorization.substr(0, 7) == "Bearer ") {
    entry.bearer_token = std::string(authorization.substr(7));
  }
  RetryPolicy once = retry_;
  once.attempts = 1;
  return std::make_shared<RegistryClient>(executor_, entry, client_options_, once, clock_);
}

void Upstreams::evict_unlisted() {
  auto oldest = clients_.end();
  for (auto it = clients_.begin(); it != clients_.end(); ++it) {
    if (!it->second.listed &&
        (oldest == clients_.end() || it->second.last_use < oldest->second.last_use)) {
      oldest = it;
    }
  }
  if (oldest == clients_.end()) return;
  clients_.erase(oldest);
  --unlisted_;
}

namespace {

// Statuses that mean "this source cannot answer now": the next source should try.
bool is_handover_status(int status) {
  return status == 401 || status == 403 || status == 429 || status >= 500;
}

}  // namespace

std::string source_name(const RegistryClient& client) {
  return client.entry().ns.empty() ? "upstream" : "supernode";
}

Task<Result<Fetched>> fetch_with_fallback(UpstreamTarget target, UpstreamCall call) {
  if (!target.fallback) {
    auto only = co_await target.client->fetch(std::move(call));
    if (!only) co_return only.error();
    co_return Fetched{std::move(*only), source_name(*target.client)};
  }
  UpstreamCall first = call;
  const auto now = std::chrono::steady_clock::now();
  if (call.deadline > now) first.deadline = now + (call.deadline - now) / 2;
  auto resp = co_await target.client->fetch(std::move(first));
  const bool handover =
      resp ? is_handover_status((*resp)->status) : is_handover_error(resp.error());
  if (!handover) co_return Fetched{std::move(*resp), source_name(*target.client)};
  LOG_WARN("{} {}/{}: {} failed ({}); asking the registry directly", call.method, target.registry,
           call.repository, target.client->entry().url.origin(),
           resp ? "status " + std::to_string((*resp)->status) : resp.error().what());
  resp = Result<std::unique_ptr<ClientResponse>>(Error(Errc::kInternal));  // closes the first
  auto direct = co_await target.fallback->fetch(std::move(call));
  if (!direct) co_return direct.error();
  co_return Fetched{std::move(*direct), source_name(*target.fallback)};
}

}  // namespace layerswarm::mirror
