#include "agent/agent.h"

#include <unistd.h>

#include <cstdio>

#include "agent/membership.h"
#include "agent/pulls.h"
#include "agent/seeder.h"
#include "agent/supernode_link.h"
#include "agent/swarm_source.h"
#include "common/json_config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/mirror/blob_fetch.h"
#include "common/mirror/node.h"
#include "common/p2p/swarm.h"
#include "common/registry_client.h"
#include "common/store.h"
#include "common/url.h"
#include "layerswarm_version.h"

namespace layerswarm::agent {

// Declared in dependency order: the node uses the swarm source, which uses the seeder, the link
// and the swarm. The seeder uses the node's store only through its timers and coroutines, which
// end with the io_context before anything here is destroyed.
struct Agent::Impl {
  ~Impl() {
    *alive = false;
    if (register_timer) register_timer->cancel();
    Metrics::get().forget(this);
  }
  std::string zone;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  std::unique_ptr<asio::steady_timer> register_timer;
  Task<void> register_loop();
  std::unique_ptr<SupernodeLink> link;
  std::unique_ptr<p2p::Swarm> swarm;
  std::unique_ptr<MembershipKeeper> membership;
  std::unique_ptr<Seeder> seeder;
  std::unique_ptr<SwarmSource> swarm_source;
  std::unique_ptr<mirror::MirrorNode> node;
  std::unique_ptr<AgentFront> front;  // with a supernode: its pull requests (preheat)
};

namespace {

using FirstJoin = std::optional<Result<std::optional<Membership>>>;

Task<void> first_join(SupernodeLink& link, FirstJoin& out) {
  out = co_await request_membership(link);
}

// Asks the supernode for a member certificate before anything else runs on `ioc` (at most
// 10 s): a closed site's swarm then starts TLS-only. Empty when no answer came in time.
FirstJoin join_at_start(asio::io_context& ioc, SupernodeLink& link) {
  FirstJoin result;
  asio::co_spawn(ioc, first_join(link, result), asio::detached);
  const SteadyTime deadline = deadline_after(std::chrono::seconds(10));
  for (int i = 0; i < 100'000 && !result && std::chrono::steady_clock::now() < deadline; ++i) {
    ioc.run_one_until(deadline);
  }
  ioc.restart();
  return result;
}

}  // namespace

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::create(const AgentConfig& config, asio::io_context& ioc,
                                             const Clock& clock) {
  mirror::NodeOptions options;
  options.data_dir = config.data_dir;
  options.mirror = config.mirror;
  options.listen = config.listen;
  options.tls_listen = config.tls.listen;
  options.tls = TlsFiles{config.tls.cert, config.tls.key, {}};
  options.drain_timeout = config.drain_timeout;
  options.metrics_listen = config.metrics_listen;
  options.direct_fallback = config.direct_fallback;
  auto impl = std::make_unique<Impl>();
  if (!config.supernode.empty()) {
    auto token = read_secret_file(config.token_file);
    if (!token) return token.error();
    options.via =
        mirror::Via{*Url::parse(config.supernode), *token, config.supernode_ca_file, false};
    options.admin_token = *token;
    if (config.swarm.enabled) {
      impl->link = std::make_unique<SupernodeLink>(
          ioc.get_executor(),
          SupernodeLinkOptions{options.via->url, *token, config.zone, config.supernode_ca_file});
      p2p::SwarmOptions swarm_options;
      swarm_options.listen = config.p2p_listen;
      swarm_options.upload_rate_limit = static_cast<int>(config.swarm.upload_rate_limit);
      swarm_options.download_rate_limit = static_cast<int>(config.swarm.download_rate_limit);
      swarm_options.peers_per_torrent = static_cast<int>(config.swarm.peers_per_torrent);
      swarm_options.upload_slots = static_cast<int>(config.swarm.upload_slots);
      swarm_options.connections_limit = static_cast<int>(config.swarm.max_peer_connections);
      // Descriptors: connections, plus at most this many announces to the supernode's tracker
      // (answered in about a millisecond), keep the agent under 256 (docs/architecture.md
      // "Seeding what is in demand").
      swarm_options.http_announces = 16;
      swarm_options.one_copy_quiet = config.swarm.duplicate_wait;
      // A closed site's swarm admits members only (docs/security.md).
      std::optional<Membership> member;
      bool open_site = false;
      FirstJoin joined = join_at_start(ioc, *impl->link);
      if (!joined) {
        LOG_WARN(
            "swarm: the supernode did not answer a certificate request in 10 s; asking "
            "again in the background (blobs come over HTTP meanwhile)");
      } else if (!*joined) {
        // A refused token is the operator's to fix; the agent still serves (from the registry
        // directly, as its other requests to the supernode are refused too).
        LOG_ERROR("swarm: no member certificate: {}; asking again in the background",
                  joined->error().what());
      } else if (!**joined) {
        open_site = true;
        LOG_WARN(
            "swarm: an open site (the supernode issues no member certificates): peer "
            "traffic is plaintext (docs/security.md)");
      } else {
        member = std::move(***joined);
        swarm_options.identity = member->identity;
        impl->link->set_member(true);
        LOG_INFO("swarm: a closed site; member certificate sha256 {} (until {})",
                 member->fingerprint, member->expires);
      }
      auto swarm = p2p::Swarm::start(ioc.get_executor(), swarm_options);
      if (!swarm) return swarm.error();
      impl->swarm = std::move(*swarm);
      p2p::add_swarm_metrics(impl.get(), *impl->swarm);
      impl->membership =
          std::make_unique<MembershipKeeper>(ioc.get_executor(), *impl->link, *impl->swarm);
      impl->membership->start(std::move(member), open_site);
      SeederOptions seeding;
      seeding.idle = config.swarm.seed_idle;
      seeding.max_blobs = static_cast<std::size_t>(config.swarm.max_seeding_blobs);
      seeding.max_torrents = static_cast<std::size_t>(config.swarm.max_seeding_torrents);
      seeding.min_blob_size = config.swarm.min_blob_size;
      impl->seeder =
          std::make_unique<Seeder>(ioc.get_executor(), *impl->link, *impl->swarm, seeding);
      SwarmSourceOptions source;
      source.stall_timeout = config.swarm.stall_timeout;
      source.min_blob_size = config.swarm.min_blob_size;
      source.window = static_cast<int>(config.swarm.priority_window);
      impl->swarm_source = std::make_unique<SwarmSource>(ioc.get_executor(), *impl->link,
                                                         *impl->swarm, *impl->seeder, source);
    }
  }
  auto node = mirror::MirrorNode::create(options, ioc, clock, impl->swarm_source.get());
  if (!node) return node.error();
  impl->node = std::move(*node);
  if (impl->seeder) impl->seeder->start(impl->node->store());
  if (options.via) {
    impl->front = std::make_unique<AgentFront>(ioc.get_executor(), *impl->node, options.via->token);
    impl->node->set_front(impl->front.get());
  }
  impl->zone = config.zone;
  impl->register_timer = std::make_unique<asio::steady_timer>(ioc.get_executor());
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

const std::vector<std::string>& Agent::endpoints() const { return impl_->node->endpoints(); }
const std::string& Agent::metrics_endpoint() const { return impl_->node->metrics_endpoint(); }
std::uint16_t Agent::p2p_port() const { return impl_->swarm ? impl_->swarm->port() : 0; }
const mirror::Counters& Agent::counters() const { return impl_->node->counters(); }
void Agent::start() {
  impl_->node->start();
  if (impl_->link)
    asio::co_spawn(impl_->register_timer->get_executor(), impl_->register_loop(), asio::detached);
}

// Registers with the supernode now and every 30 s (docs/operations.md "Agents").
Task<void> Agent::Impl::register_loop() {
  std::weak_ptr<bool> watch = alive;
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "agent");
  const std::string& listen = node->endpoints().front();
  const std::string port = listen.substr(listen.rfind(':') + 1);
  const std::string id = std::string(host) + ":" + port;
  bool warned = false;
  for (long i = 0; i < (1L << 40); ++i) {
    if (watch.expired() || !*alive) co_return;
    const mirror::Counters& c = node->counters();
    auto n = [](std::uint64_t v) { return std::to_string(v); };
    const std::string target =
        "/api/v1/agents?id=" + percent_encode(id) + "&port=" + port +
        "&zone=" + percent_encode(zone) + "&version=" + LAYERSWARM_VERSION +
        "&cache_bytes=" + n(node->store().used_bytes()) +
        "&cache_capacity=" + n(node->cache_capacity()) +
        "&downloads=" + n(node->fetcher().in_flight()) + "&from_cache=" + n(c.bytes_from_cache) +
        "&from_swarm=" + n(c.bytes_from_swarm) + "&from_supernode=" + n(c.bytes_from_supernode) +
        "&from_upstream=" + n(c.bytes_from_upstream) + "&errors=" + n(c.errors) +
        "&digest_mismatches=" + n(c.digest_mismatches) +
        "&upstreams_offline=" + n(reachability().offline.load()) +
        "&writable=" + (node->store().writable() ? "1" : "0");
    Headers none;
    auto answer = co_await link->post(target, std::move(none), 64 << 10);
    if (watch.expired() || !*alive) co_return;
    const bool ok = answer && answer->status == 204;
    if (!ok && !warned) {
      LOG_WARN("registering with the supernode: {}",
               answer ? "status " + std::to_string(answer->status) : answer.error().what());
    }
    warned = !ok;
    register_timer->expires_after(std::chrono::seconds(30));
    boost::system::error_code ec;
    co_await register_timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}
void Agent::cut_shutdown() { impl_->node->cut_shutdown(); }
Task<void> Agent::shutdown() { co_await impl_->node->shutdown(); }

}  // namespace layerswarm::agent
