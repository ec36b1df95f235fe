#include "supernode/supernode.h"

#include <openssl/crypto.h>

#include "common/json_config.h"
#include "common/log.h"
#include "common/mirror/node.h"
#include "common/mirror/responses.h"
#include "common/p2p/swarm.h"
#include "supernode/publisher.h"
#include "supernode/tracker.h"

namespace layerswarm::supernode {

bool carries_token(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (token.empty() || authorization.size() != kBearer.size() + token.size()) return false;
  if (authorization.substr(0, kBearer.size()) != kBearer) return false;
  return CRYPTO_memcmp(authorization.data() + kBearer.size(), token.data(), token.size()) == 0;
}

namespace {

// Routes the tracker's announces, admits cluster members only, then passes requests to the
// OCI API.
class Front final : public HttpHandler {
 public:
  Front(HttpHandler& api, Publisher& publisher, std::string token)
      : api_(api),
        publisher_(publisher),
        token_(token),
        tracker_(std::move(token), TrackerOptions{}) {}

  Task<void> handle(HttpRequest request, ResponseWriter& out) override {
    const auto q = request.target.find('?');
    if (request.target.substr(0, q) == "/announce" && request.method == "GET") {
      co_await announce(std::move(request), out);
      co_return;
    }
    if (!carries_token(request.headers.get("Authorization").value_or(""), token_)) {
      RequestLog log;
      log.method = request.method;
      log.remote = request.remote;
      log.object = request.target.substr(0, request.target.find('?'));
      Error refused(Errc::kUnauthorized, "this supernode serves cluster members only");
      co_await refuse(out, std::move(refused), log);
      log_request(log);
      co_return;
    }
    if (Publisher::handles(request.target)) {
      const auto start = std::chrono::steady_clock::now();
      RequestLog log;
      log.method = request.method;
      log.remote = request.remote;
      co_await publisher_.serve(std::move(request), out, log);
      log.millis =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      // Every agent polls the demand feed all the time: like announces, answered polls are
      // not logged one by one (a site of 1,000 agents would log 100 lines a second).
      if (log.object != "demand" || log.status != 200) log_request(log);
      co_return;
    }
    co_await api_.handle(std::move(request), out);
  }

 private:
  Task<void> refuse(ResponseWriter& out, Error error, RequestLog& log) {
    const std::string body = oci_error_body(make_error_code(Errc::kUnauthorized), error.message);
    ResponseHead head;
    head.status = 401;
    head.headers.add("Content-Type", "application/json");
    head.headers.add("WWW-Authenticate", "Bearer realm=\"layerswarm-cluster\"");
    log.error = error.message;
    co_await mirror::send_body(out, std::move(head), body, log);
  }

  // The token is checked by the tracker: it travels in the query (libtorrent sends no headers).
  Task<void> announce(HttpRequest request, ResponseWriter& out) {
    const auto q = request.target.find('?');
    const std::string_view query = q == std::string::npos
                                       ? std::string_view()
                                       : std::string_view(request.target).substr(q + 1);
    const std::string_view remote =
        std::string_view(request.remote).substr(0, request.remote.rfind(':'));
    const std::string body = tracker_.announce(query, remote, std::chrono::steady_clock::now());
    ResponseHead head;
    head.headers.add("Content-Type", "text/plain");
    RequestLog log;  // announces are frequent: not logged per request
    co_await mirror::send_body(out, std::move(head), body, log);
  }

  HttpHandler& api_;
  Publisher& publisher_;
  std::string token_;
  Tracker tracker_;
};

}  // namespace

// Declared in dependency order: the front and publisher go before the swarm and the node.
struct Supernode::Impl {
  std::unique_ptr<mirror::MirrorNode> node;
  std::unique_ptr<p2p::Swarm> swarm;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<Front> front;
};

Supernode::Supernode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Supernode::~Supernode() = default;

Result<std::unique_ptr<Supernode>> Supernode::create(const SupernodeConfig& config,
                                                     asio::io_context& ioc, const Clock& clock) {
  auto token = read_secret_file(config.token_file);
  if (!token) return token.error();
  mirror::NodeOptions options;
  options.data_dir = config.data_dir;
  options.mirror = config.mirror;
  options.listen = config.listen;
  options.tls_listen = config.tls.listen;
  options.tls = TlsFiles{config.tls.cert, config.tls.key};
  options.drain_timeout = config.drain_timeout;
  auto node = mirror::MirrorNode::create(options, ioc, clock);
  if (!node) return node.error();
  auto impl = std::make_unique<Impl>();
  impl->node = std::move(*node);
  p2p::SwarmOptions swarm_options;
  swarm_options.listen = config.p2p_listen;
  swarm_options.upload_rate_limit = static_cast<int>(config.swarm.upload_rate_limit);
  auto swarm = p2p::Swarm::start(ioc.get_executor(), swarm_options);
  if (!swarm) return swarm.error();
  impl->swarm = std::move(*swarm);
  impl->publisher = std::make_unique<Publisher>(
      *impl->node, *impl->swarm,
      PublisherOptions{config.swarm.chunk_size, static_cast<int>(config.swarm.piece_size)},
      ioc.get_executor());
  impl->front = std::make_unique<Front>(impl->node->mirror(), *impl->publisher, *token);
  impl->node->set_front(impl->front.get());
  return std::unique_ptr<Supernode>(new Supernode(std::move(impl)));
}

const std::vector<std::string>& Supernode::endpoints() const { return impl_->node->endpoints(); }
const mirror::Counters& Supernode::counters() const { return impl_->node->counters(); }
void Supernode::start() { impl_->node->start(); }
void Supernode::cut_shutdown() { impl_->node->cut_shutdown(); }
Task<void> Supernode::shutdown() { co_await impl_->node->shutdown(); }

}  // namespace layerswarm::supernode
