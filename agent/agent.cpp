#include "agent/agent.h"

#include <boost/asio/io_context.hpp>

#include "common/duration.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/mirror/blob_fetch.h"
#include "common/mirror/blob_service.h"
#include "common/mirror/manifest_service.h"
#include "common/mirror/mirror.h"
#include "common/mirror/upstream_source.h"
#include "common/mirror/upstreams.h"
#include "common/store.h"

namespace layerswarm::agent {

using namespace layerswarm::mirror;

// Members are declared in dependency order: destroyed in reverse, the pool is joined before
// the store closes.
struct Agent::Impl {
  Impl(const AgentConfig& cfg, asio::io_context& io, const Clock& clk, std::unique_ptr<Store> st)
      : config(cfg),
        ioc(io),
        clock(clk),
        store(std::move(st)),
        pool(2),
        upstreams(io.get_executor(), cfg.mirror, clk),
        source(upstreams),
        fetcher(io.get_executor(), *store, source, pool, counters,
                FetchOptions{cfg.mirror.upstream_client.response_timeout}),
        manifests(*store, clk, counters,
                  ManifestPolicy{cfg.mirror.cache.tag_ttl, cfg.mirror.cache.max_stale,
                                 cfg.mirror.upstream_client.response_timeout}),
        blobs(
            *store, fetcher, source, counters,
            BlobServiceOptions{cfg.mirror.upstream_client.response_timeout,
                               cfg.mirror.upstream_client.read_timeout + std::chrono::seconds(5)}),
        mirror(upstreams, manifests, blobs, counters, cfg.mirror.upstream_client.response_timeout),
        server(io, mirror),
        sweep_timer(io) {}

  Task<void> sweep_loop();

  AgentConfig config;
  asio::io_context& ioc;
  const Clock& clock;
  Counters counters;
  std::unique_ptr<Store> store;
  asio::thread_pool pool;
  Upstreams upstreams;
  UpstreamBlobSource source;
  BlobFetcher fetcher;
  ManifestService manifests;
  BlobService blobs;
  Mirror mirror;
  HttpServer server;
  asio::steady_timer sweep_timer;
  std::vector<std::string> endpoints;
  bool stopping = false;
};

Task<void> Agent::Impl::sweep_loop() {
  while (!stopping) {
    const auto now = clock.now();
    const auto objects_before = now - config.mirror.cache.ttl;
    const auto tags_before = now - std::max(config.mirror.cache.ttl, config.mirror.cache.max_stale);
    Store* st = store.get();
    auto job = [st, objects_before, tags_before] {
      return st->sweep(objects_before, tags_before, 100'000);
    };
    auto stats = co_await offload(pool, std::move(job));
    if (!stats) {
      LOG_ERROR("cache sweep failed: {}", stats.error().what());
    } else if (stats->blobs + stats->manifests + stats->tags > 0) {
      LOG_INFO("cache sweep removed {} blobs, {} manifests ({} bytes) and {} tags unused for {}",
               stats->blobs, stats->manifests, stats->bytes, stats->tags,
               format_duration(config.mirror.cache.ttl));
    }
    sweep_timer.expires_after(config.mirror.cache.sweep_interval);
    boost::system::error_code ec;
    co_await sweep_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::create(const AgentConfig& config, asio::io_context& ioc,
                                             const Clock& clock) {
  StoreOptions store_options{config.data_dir};
  // Last-access writes are coarse, but fine enough to honour a short TTL.
  store_options.access_granularity =
      std::min<std::chrono::milliseconds>(std::chrono::minutes(10), config.mirror.cache.ttl / 10);
  auto store = Store::open(store_options, clock);
  if (!store) return store.error();
  auto impl = std::make_unique<Impl>(config, ioc, clock, std::move(*store));
  auto plain = impl->server.listen(config.listen, std::nullopt);
  if (!plain) return plain.error();
  impl->endpoints.push_back(*plain);
  if (!config.tls.listen.empty()) {
    auto tls = impl->server.listen(config.tls.listen, TlsFiles{config.tls.cert, config.tls.key});
    if (!tls) return tls.error();
    impl->endpoints.push_back(*tls);
  }
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

const std::vector<std::string>& Agent::endpoints() const { return impl_->endpoints; }
const Counters& Agent::counters() const { return impl_->counters; }

void Agent::start() {
  impl_->server.start();
  asio::co_spawn(impl_->ioc, impl_->sweep_loop(), asio::detached);
}

void Agent::cut_shutdown() { impl_->server.cut_drain(); }

Task<void> Agent::shutdown() {
  impl_->stopping = true;
  impl_->sweep_timer.cancel();
  impl_->server.stop_accepting();
  co_await impl_->server.drain(deadline_after(impl_->config.drain_timeout));
}

}  // namespace layerswarm::agent
