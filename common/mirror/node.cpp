#include "common/mirror/node.h"
#include "common/mirror/cache_admin.h"

#include <boost/asio/io_context.hpp>

#include "common/duration.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/mirror/blob_fetch.h"
#include "common/mirror/blob_service.h"
#include "common/mirror/cache_keeper.h"
#include "common/mirror/manifest_service.h"
#include "common/mirror/mirror.h"
#include "common/mirror/operations.h"
#include "common/mirror/pins.h"
#include "common/mirror/source_chain.h"
#include "common/mirror/upstream_source.h"
#include "common/reference.h"
#include "common/registry_client.h"
#include "common/service.h"
#include "common/store.h"

namespace layerswarm::mirror {

namespace {

// Passes requests to the front handler when one is set, else to the OCI API.
class Dispatch final : public HttpHandler {
 public:
  explicit Dispatch(HttpHandler& mirror) : mirror_(mirror) {}
  void set_front(HttpHandler* front) { front_ = front; }
  Task<void> handle(HttpRequest request, ResponseWriter& out) override {
    HttpHandler& h = front_ ? *front_ : mirror_;
    co_await h.handle(std::move(request), out);
  }

 private:
  HttpHandler& mirror_;
  HttpHandler* front_ = nullptr;
};

std::vector<BlobSource*> sources_in_order(BlobSource* first, BlobSource* via, BlobSource* direct,
                                          bool use_direct) {
  std::vector<BlobSource*> out;
  if (first) out.push_back(first);
  if (via) out.push_back(via);
  if (!via || use_direct) out.push_back(direct);
  return out;
}

FetchOptions fetch_options(const NodeOptions& opts) {
  FetchOptions f;
  f.open_timeout = opts.mirror.upstream_client.response_timeout;
  const std::string& order = opts.mirror.upstream_client.blob_order;
  f.turns.in_order = order == "smallest-first" || (order.empty() && !opts.via);
  return f;
}

}  // namespace

// Members are declared in dependency order: destroyed in reverse, the pool is joined before
// the store closes.
struct MirrorNode::Impl {
  Impl(const NodeOptions& opts, asio::io_context& io, const Clock& clk, std::unique_ptr<Store> st,
       BlobSource* first)
      : options(opts),
        ioc(io),
        clock(clk),
        store(std::move(st)),
        pool(2),
        keeper(io.get_executor(), *store, pool, counters,
               KeeperOptions{opts.mirror.cache.max_size, opts.mirror.cache.evict_to,
                             opts.mirror.cache.scrub_interval, opts.mirror.cache.scrub_rate,
                             opts.mirror.cache.space_check_interval}),
        direct(io.get_executor(), opts.mirror, clk),
        via(opts.via ? std::make_unique<Upstreams>(io.get_executor(), opts.mirror, clk, opts.via)
                     : nullptr),
        direct_source(direct, "upstream"),
        via_source(via ? std::make_unique<UpstreamBlobSource>(*via, "supernode") : nullptr),
        chain(sources_in_order(first, via_source.get(), &direct_source, opts.direct_fallback)),
        fetcher(io.get_executor(), *store, chain, pool, counters, fetch_options(opts), &keeper),
        manifests(*store, clk, counters,
                  ManifestPolicy{opts.mirror.cache.tag_ttl, opts.mirror.cache.max_stale,
                                 opts.mirror.upstream_client.response_timeout,
                                 opts.mirror.cache.repository_check}),
        blobs(*store, fetcher, chain, counters, clk,
              BlobServiceOptions{opts.mirror.upstream_client.response_timeout,
                                 opts.mirror.upstream_client.read_timeout + std::chrono::seconds(5),
                                 opts.mirror.cache.repository_check}),
        api(via ? *via : direct, manifests, blobs, counters,
            MirrorAuth{opts.mirror.authorize_ttl, opts.honour_forwarded_credentials},
            opts.mirror.upstream_client.response_timeout),
        dispatch(api),
        server(io, dispatch, opts.limits),
        sweep_timer(io) {
    if (via && opts.direct_fallback) via->set_fallback(&direct);
  }

  Task<void> sweep_loop();

  NodeOptions options;
  asio::io_context& ioc;
  const Clock& clock;
  Counters counters;
  std::unique_ptr<Store> store;
  asio::thread_pool pool;
  CacheKeeper keeper;
  Upstreams direct;
  std::unique_ptr<Upstreams> via;
  UpstreamBlobSource direct_source;
  std::unique_ptr<UpstreamBlobSource> via_source;
  SourceChain chain;
  BlobFetcher fetcher;
  ManifestService manifests;
  BlobService blobs;
  Mirror api;
  Dispatch dispatch;
  HttpServer server;
  asio::steady_timer sweep_timer;
  std::unique_ptr<ImageFetcher> images;
  std::unique_ptr<Pinner> pinner;
  std::unique_ptr<CacheAdmin> cache_admin;
  std::unique_ptr<OperationsHandler> operations;
  std::unique_ptr<HttpServer> metrics_server;
  std::string metrics_endpoint;
  std::vector<std::string> endpoints;

  ~Impl() { Metrics::get().forget(this); }
  void register_metrics();
  bool stopping = false;
};

Task<void> MirrorNode::Impl::sweep_loop() {
  const auto& cache = options.mirror.cache;
  while (!stopping) {
    const auto now = clock.now();
    const auto objects_before = now - cache.ttl;
    const auto tags_before = now - std::max(cache.ttl, cache.max_stale);
    Store* st = store.get();
    auto job = [st, objects_before, tags_before] {
      return st->sweep(objects_before, tags_before, 100'000);
    };
    auto stats = co_await offload(pool, std::move(job));
    if (stopping) co_return;
    co_await keeper.enforce();
    if (!stats) {
      LOG_ERROR("cache sweep failed: {}", stats.error().what());
    } else if (stats->blobs + stats->manifests + stats->tags > 0) {
      LOG_INFO("cache sweep removed {} blobs, {} manifests ({} bytes) and {} tags unused for {}",
               stats->blobs, stats->manifests, stats->bytes, stats->tags,
               format_duration(cache.ttl));
    }
    sweep_timer.expires_after(cache.sweep_interval);
    boost::system::error_code ec;
    co_await sweep_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// What the metrics sample from this node at each scrape (docs/operations.md "Metrics").
void MirrorNode::Impl::register_metrics() {
  Metrics& m = Metrics::get();
  auto gauge = [&](const char* name, const char* help, std::function<double()> f) {
    m.add_sampled(this, Metrics::Sample{name, help, false, {}, std::move(f)});
  };
  auto counter = [&](const char* name, const char* help, std::function<double()> f) {
    m.add_sampled(this, Metrics::Sample{name, help, true, {}, std::move(f)});
  };
  Store* st = store.get();
  Counters* c = &counters;
  gauge("layerswarm_cache_bytes", "Bytes of cached blobs and manifests",
        [st] { return static_cast<double>(st->used_bytes()); });
  CacheKeeper* k = &keeper;
  gauge("layerswarm_cache_capacity_bytes",
        "The cache's budget (cache.max_size), or its filesystem's size without one",
        [k] { return static_cast<double>(k->capacity()); });
  gauge("layerswarm_cache_writable",
        "1 when the cache stores new content (0: read-only, full disk)",
        [st] { return st->writable() ? 1.0 : 0.0; });
  BlobFetcher* f = &fetcher;
  gauge("layerswarm_downloads_in_flight", "Blob downloads in progress",
        [f] { return static_cast<double>(f->in_flight()); });
  gauge("layerswarm_upstreams_offline", "Upstream registries found unreachable and not back yet",
        [] { return static_cast<double>(reachability().offline.load()); });
  counter("layerswarm_digest_mismatches_total", "Downloads whose bytes did not hash to the digest",
          [c] { return static_cast<double>(c->digest_mismatches.load()); });
  counter("layerswarm_aborted_responses_total", "Responses cut short after their headers",
          [c] { return static_cast<double>(c->aborted_responses.load()); });
  counter("layerswarm_evicted_blobs_total", "Blobs evicted under the disk budget",
          [c] { return static_cast<double>(c->evicted_blobs.load()); });
  counter("layerswarm_evicted_bytes_total", "Bytes evicted under the disk budget",
          [c] { return static_cast<double>(c->evicted_bytes.load()); });
  counter("layerswarm_uncached_blobs_total", "Blobs served verified but not stored (no room)",
          [c] { return static_cast<double>(c->uncached_blobs.load()); });
  counter("layerswarm_corrupt_blobs_total", "Cached blobs found changed or rotten (quarantined)",
          [c] { return static_cast<double>(c->corrupt_blobs.load()); });
  counter("layerswarm_resumed_bytes_total", "Bytes taken from partial downloads of earlier runs",
          [c] { return static_cast<double>(c->resumed_bytes.load()); });
  counter("layerswarm_scrubbed_bytes_total", "Bytes hashed again by the scrub",
          [c] { return static_cast<double>(c->scrubbed_bytes.load()); });
}

MirrorNode::MirrorNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MirrorNode::~MirrorNode() = default;

Result<std::unique_ptr<MirrorNode>> MirrorNode::create(const NodeOptions& options,
                                                       asio::io_context& ioc, const Clock& clock,
                                                       BlobSource* first) {
  StoreOptions store_options{options.data_dir};
  // Last-access writes are coarse, but fine enough to honour a short TTL.
  store_options.access_granularity =
      std::min<std::chrono::milliseconds>(std::chrono::minutes(10), options.mirror.cache.ttl / 10);
  auto store = Store::open(store_options, clock);
  if (!store) return store.error();
  auto impl = std::make_unique<Impl>(options, ioc, clock, std::move(*store), first);
  Counters* counters = &impl->counters;
  impl->store->on_quarantine([counters] { ++counters->corrupt_blobs; });
  if (auto s = impl->keeper.start(); !s) return s.error();
  impl->images =
      std::make_unique<ImageFetcher>(ioc.get_executor(), impl->via ? *impl->via : impl->direct,
                                     impl->manifests, impl->fetcher, *impl->store);
  impl->pinner = std::make_unique<Pinner>(
      ioc.get_executor(), *impl->images, *impl->store,
      PinnerOptions{options.mirror.cache.pins, options.mirror.cache.pin_refresh,
                    impl->keeper.budget(), options.data_dir + "/pins.json"},
      [](const Error& e) { request_fatal_exit(e); });
  impl->cache_admin =
      std::make_unique<CacheAdmin>(*impl->store, *impl->pinner, *impl->images, options.admin_token);
  impl->api.set_cache_admin(impl->cache_admin.get());
  impl->register_metrics();
  Impl* raw = impl.get();
  impl->api.set_ready([raw] { return !raw->stopping; });
  impl->api.set_role(options.role);
  if (!options.metrics_listen.empty()) {
    impl->operations = std::make_unique<OperationsHandler>([raw] { return !raw->stopping; });
    impl->metrics_server = std::make_unique<HttpServer>(ioc, *impl->operations, options.limits);
    auto bound = impl->metrics_server->listen(options.metrics_listen, std::nullopt);
    if (!bound) return bound.error();
    impl->metrics_endpoint = *bound;
  }
  auto plain = impl->server.listen(options.listen, std::nullopt);
  if (!plain) return plain.error();
  impl->endpoints.push_back(*plain);
  if (!options.tls_listen.empty()) {
    auto tls = impl->server.listen(options.tls_listen, options.tls);
    if (!tls) return tls.error();
    impl->endpoints.push_back(*tls);
  }
  return std::unique_ptr<MirrorNode>(new MirrorNode(std::move(impl)));
}

void MirrorNode::set_front(HttpHandler* front) { impl_->dispatch.set_front(front); }
HttpHandler& MirrorNode::mirror() { return impl_->api; }
const std::vector<std::string>& MirrorNode::endpoints() const { return impl_->endpoints; }
const std::string& MirrorNode::metrics_endpoint() const { return impl_->metrics_endpoint; }
const Counters& MirrorNode::counters() const { return impl_->counters; }
Store& MirrorNode::store() { return *impl_->store; }
asio::thread_pool& MirrorNode::pool() { return impl_->pool; }
BlobFetcher& MirrorNode::fetcher() { return impl_->fetcher; }
BlobService& MirrorNode::blobs() { return impl_->blobs; }
ImageFetcher& MirrorNode::images() { return *impl_->images; }
std::uint64_t MirrorNode::cache_capacity() const { return impl_->keeper.capacity(); }

Result<BlobLocator> MirrorNode::locate(std::string_view registry, std::string_view name,
                                       const Digest& digest) {
  auto target = impl_->direct.resolve(registry);
  if (!target) return target.error();
  return BlobLocator{target->registry, canonical_name(target->registry, name), digest};
}

void MirrorNode::start() {
  impl_->server.start();
  if (impl_->metrics_server) impl_->metrics_server->start();
  asio::co_spawn(impl_->ioc, impl_->sweep_loop(), asio::detached);
  impl_->pinner->start();
}

void MirrorNode::cut_shutdown() { impl_->server.cut_drain(); }

Task<void> MirrorNode::shutdown() {
  impl_->stopping = true;
  impl_->sweep_timer.cancel();
  impl_->keeper.stop();
  impl_->pinner->stop();
  impl_->server.stop_accepting();
  if (impl_->metrics_server) impl_->metrics_server->stop_accepting();
  co_await impl_->server.drain(deadline_after(impl_->options.drain_timeout));
}

}  // namespace layerswarm::mirror
