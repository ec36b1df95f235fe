#include "supernode/supernode.h"
#include "supernode/status_page.h"

#include <openssl/crypto.h>

#include <map>

#include <nlohmann/json.hpp>

#include "common/audit.h"
#include "common/encoding.h"
#include "common/json_config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/mirror/cache_admin.h"
#include "common/mirror/node.h"
#include "common/mirror/operations.h"
#include "common/mirror/responses.h"
#include "common/p2p/swarm.h"
#include "common/pki.h"
#include "common/swarm_protocol.h"
#include "supernode/agents.h"
#include "supernode/copies.h"
#include "supernode/preheat.h"
#include "supernode/publisher.h"
#include "supernode/site.h"
#include "supernode/tracker.h"

namespace layerswarm::supernode {

namespace {

namespace proto = swarm_protocol;

TrackerOptions tracker_options(bool closed_site) {
  TrackerOptions t;
  t.members_only = closed_site;
  return t;
}

// Routes the tracker's announces, admits cluster members only, then passes requests to the
// OCI API. In a closed site (`site` set) everything is https only, announces need a member
// certificate, and agents get theirs at POST /swarm/v1/certificate.
class Front final : public HttpHandler {
 public:
  Front(HttpHandler& api, Publisher& publisher, std::string token, std::string admin_password,
        const SiteAuthority* site)
      : api_(api),
        publisher_(publisher),
        token_(token),
        admin_password_(std::move(admin_password)),
        site_(site),
        tracker_(std::move(token), tracker_options(site != nullptr)) {}

  Task<void> handle(HttpRequest request, ResponseWriter& out) override {
    const auto q = request.target.find('?');
    const std::string path = request.target.substr(0, q);
    RequestLog log;
    log.method = request.method;
    log.remote = request.remote;
    log.object = path;
    if (audit_enabled()) {
      log.identity = request.client_identity.empty()
                         ? audit_identity(request.headers.get("Authorization").value_or(""))
                         : "member:" + request.client_identity;
    }
    // Probes need no token (/metrics does: it goes on to the check below).
    if (path == "/healthz" || path == "/readyz") {
      co_await api_.handle(std::move(request), out);
      co_return;
    }
    if (site_ && !request.secure) {
      // The token must never cross the network in clear: a closed site answers plain http
      // with nothing but this.
      Error refused(Errc::kDenied, "this site's supernode answers over https only");
      co_await mirror::send_error(out, std::move(refused), log);
      log_request(log);
      co_return;
    }
    if (path == "/announce" && request.method == "GET") {
      co_await announce(std::move(request), out);
      co_return;
    }
    if (path == "/ui" || path == "/ui/") {
      // The page holds no data: it asks for the token or the admin password and then reads
      // the API below with it (docs/operations.md "Status page").
      co_await serve_status_page(request, out, log);
      co_return;
    }
    const std::string authorization(request.headers.get("Authorization").value_or(""));
    const bool member = carries_token(authorization, token_);
    const bool admin = !member && !admin_password_.empty() &&
                       carries_token(authorization, admin_password_) &&
                       admin_may_read(request.method, path);
    if (!member && !admin) {
      Error refused(Errc::kUnauthorized, "this supernode serves cluster members only");
      co_await refuse(out, std::move(refused), log);
      log_request(log);
      co_return;
    }
    if (path == "/api/v1/preheat" || path.starts_with("/api/v1/preheat/")) {
      co_await preheat(request, path, out, log);
      log_request(log);
      co_return;
    }
    if ((path == "/api/v1/copies" || path.starts_with("/api/v1/copies/")) && copies_) {
      co_await copies(request, path, out, log);
      log_request(log);
      co_return;
    }
    if (path == "/api/v1/agents") {
      co_await agents(request, out, log);
      // Registrations come every 30 s from every agent: logged only when refused.
      if (request.method != "POST" || log.status >= 400) log_request(log);
      co_return;
    }
    if (path == proto::kCertificatePath) {
      co_await certificate(request, out, log);
      log_request(log);
      co_return;
    }
    if (Publisher::handles(request.target)) {
      const auto start = std::chrono::steady_clock::now();
      log.object.clear();  // the publisher names what was asked
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

  const Tracker& tracker() const { return tracker_; }
  const AgentRegistry& registry() const { return agents_; }
  void set_preheater(Preheater* preheater) { preheater_ = preheater; }
  void set_copies(CopyKeeper* copies) { copies_ = copies; }
  // Agents registered in the last AgentRegistry::kGone.
  std::size_t known_agents() const { return agents_.live(std::chrono::system_clock::now()); }

 private:
  // What the admin password opens: reading the node's state, nothing of the site's content.
  static bool admin_may_read(std::string_view method, std::string_view path) {
    return (method == "GET" || method == "HEAD") &&
           (path == mirror::kStatusPath || path == "/api/v1/agents" || path == "/metrics" ||
            path == mirror::CacheAdmin::kPrefix || path == "/api/v1/copies" ||
            path == "/api/v1/preheat" || path.starts_with("/api/v1/preheat/"));
  }

  Task<void> serve_status_page(const HttpRequest& request, ResponseWriter& out, RequestLog& log) {
    if (request.method != "GET" && request.method != "HEAD") {
      Error wrong(Errc::kMethodNotAllowed, "GET /ui");
      co_await mirror::send_error(out, std::move(wrong), log);
      log_request(log);
      co_return;
    }
    ResponseHead head;
    head.headers.add("Content-Type", "text/html; charset=utf-8");
    head.headers.add("Cache-Control", "no-store");
    // The page's own script and style only; nothing from elsewhere, no framing.
    head.headers.add("Content-Security-Policy",
                     "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                     "connect-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'");
    head.headers.add("X-Content-Type-Options", "nosniff");
    head.headers.add("Referrer-Policy", "no-referrer");
    co_await mirror::send_body(out, std::move(head), status_page_html(), log);
    log_request(log);
  }

  // POST starts a preheat, GET /api/v1/preheat/<id> reports it (docs/operations.md "Preheat").
  Task<void> preheat(const HttpRequest& request, const std::string& path, ResponseWriter& out,
                     RequestLog& log) {
    ResponseHead head;
    head.headers.add("Content-Type", "application/json");
    if (path == "/api/v1/preheat" && request.method == "POST" && preheater_) {
      const auto q = request.target.find('?');
      auto parsed =
          parse_preheat(q == std::string::npos ? std::string_view()
                                               : std::string_view(request.target).substr(q + 1));
      Result<std::string> id =
          parsed ? preheater_->start(std::move(*parsed)) : Result<std::string>(parsed.error());
      if (!id) {
        co_await mirror::send_error(out, id.error(), log);
        co_return;
      }
      head.status = 202;
      const std::string body = nlohmann::json{{"id", *id}}.dump();
      co_await mirror::send_body(out, std::move(head), body, log);
      co_return;
    }
    if (request.method == "GET" && preheater_ && path == "/api/v1/preheat") {
      const std::string body = preheater_->list();
      co_await mirror::send_body(out, std::move(head), body, log);
      co_return;
    }
    if (request.method == "GET" && preheater_ && path.size() > 16) {
      if (auto status = preheater_->status(path.substr(16))) {
        co_await mirror::send_body(out, std::move(head), *status, log);
        co_return;
      }
      Error unknown(Errc::kNotFound, "no such preheat");
      co_await mirror::send_error(out, std::move(unknown), log);
      co_return;
    }
    Error wrong(Errc::kMethodNotAllowed,
                "POST /api/v1/preheat?image=..., GET /api/v1/preheat[/<id>]");
    co_await mirror::send_error(out, std::move(wrong), log);
  }

  // Copy rules (docs/operations.md "Copies that stay").
  Task<void> copies(const HttpRequest& request, const std::string& path, ResponseWriter& out,
                    RequestLog& log) {
    ResponseHead head;
    head.headers.add("Content-Type", "application/json");
    if (path == "/api/v1/copies" && request.method == "GET") {
      const std::string body = copies_->to_json();
      co_await mirror::send_body(out, std::move(head), body, log);
      co_return;
    }
    if (path == "/api/v1/copies" && request.method == "POST") {
      const auto q = request.target.find('?');
      auto rule =
          parse_copy_rule(q == std::string::npos ? std::string_view()
                                                 : std::string_view(request.target).substr(q + 1));
      Result<std::string> id =
          rule ? copies_->add(std::move(*rule)) : Result<std::string>(rule.error());
      if (!id) {
        co_await mirror::send_error(out, id.error(), log);
        co_return;
      }
      head.status = 201;
      const std::string body = nlohmann::json{{"id", *id}}.dump();
      co_await mirror::send_body(out, std::move(head), body, log);
      co_return;
    }
    if (request.method == "DELETE" && path.size() > 15) {
      Status removed = copies_->remove(path.substr(15));
      if (!removed) {
        co_await mirror::send_error(out, removed.error(), log);
        co_return;
      }
      head.status = 204;
      co_await mirror::send_body(out, std::move(head), "", log);
      co_return;
    }
    Error wrong(Errc::kMethodNotAllowed,
                "GET or POST /api/v1/copies?image=&copies=[&zone=], DELETE /api/v1/copies/<id>");
    co_await mirror::send_error(out, std::move(wrong), log);
  }

  // POST registers an agent, GET lists them (docs/operations.md "Agents").
  Task<void> agents(const HttpRequest& request, ResponseWriter& out, RequestLog& log) {
    const auto now = std::chrono::system_clock::now();
    ResponseHead head;
    if (request.method == "GET") {
      head.headers.add("Content-Type", "application/json");
      const std::string body = agents_.to_json(now);
      co_await mirror::send_body(out, std::move(head), body, log);
      co_return;
    }
    if (request.method != "POST") {
      Error wrong(Errc::kMethodNotAllowed, "GET or POST");
      co_await mirror::send_error(out, std::move(wrong), log);
      co_return;
    }
    const auto q = request.target.find('?');
    const std::string remote = request.remote.substr(0, request.remote.rfind(':'));
    auto record = parse_registration(
        q == std::string::npos ? std::string_view()
                               : std::string_view(request.target).substr(q + 1),
        remote.size() > 2 && remote.front() == '[' ? remote.substr(1, remote.size() - 2) : remote,
        now);
    Status noted = record ? agents_.note(std::move(*record)) : Status(record.error());
    if (!noted) {
      co_await mirror::send_error(out, noted.error(), log);
      co_return;
    }
    head.status = 204;
    co_await mirror::send_body(out, std::move(head), "", log);
  }

  Task<void> refuse(ResponseWriter& out, Error error, RequestLog& log) {
    const std::string body = oci_error_body(make_error_code(Errc::kUnauthorized), error.message);
    ResponseHead head;
    head.status = 401;
    head.headers.add("Content-Type", "application/json");
    head.headers.add("WWW-Authenticate", "Bearer realm=\"layerswarm-cluster\"");
    head.close = true;  // a stranger keeps no connection open
    log.error = error.message;
    co_await mirror::send_body(out, std::move(head), body, log);
  }

  // A member certificate for the public key in the request (docs/security.md).
  Task<void> certificate(const HttpRequest& request, ResponseWriter& out, RequestLog& log) {
    if (request.method != "POST") {
      Error wrong(Errc::kMethodNotAllowed, "POST only");
      co_await mirror::send_error(out, std::move(wrong), log);
      co_return;
    }
    if (!site_) {
      Error open(Errc::kNotFound, "an open site: no member certificates (plaintext swarm)");
      co_await mirror::send_error(out, std::move(open), log);
      co_return;
    }
    const std::string encoded(request.headers.get(proto::kPublicKey).value_or(""));
    std::optional<std::string> der;
    if (encoded.size() <= proto::kMaxPublicKey) der = base64_decode(encoded);
    if (!der || der->empty()) {
      Error bad(Errc::kNameInvalid, std::string(proto::kPublicKey) + ": base64 DER public key");
      co_await mirror::send_error(out, std::move(bad), log);
      co_return;
    }
    const std::string remote = request.remote.substr(0, request.remote.rfind(':'));
    auto issued = site_->issue_member(*der);
    if (!issued) {
      Error bad(Errc::kNameInvalid, issued.error().message);
      co_await mirror::send_error(out, std::move(bad), log);
      co_return;
    }
    LOG_INFO("issued a member certificate to {} (sha256 {}, until {})", remote, issued->fingerprint,
             issued->expires);
    nlohmann::json body = {{"certificate", issued->certificate},
                           {"ca", site_->ca_certificate()},
                           {"expires", issued->expires}};
    ResponseHead head;
    head.headers.add("Content-Type", "application/json");
    co_await mirror::send_body(out, std::move(head), body.dump(), log);
  }

  // An open site's token travels in the query (libtorrent sends no headers); a closed site's
  // members prove membership with their certificate, and their announce URLs hold no secret.
  Task<void> announce(HttpRequest request, ResponseWriter& out) {
    const auto q = request.target.find('?');
    const std::string_view query = q == std::string::npos
                                       ? std::string_view()
                                       : std::string_view(request.target).substr(q + 1);
    const std::string_view remote =
        std::string_view(request.remote).substr(0, request.remote.rfind(':'));
    const bool member = !request.client_identity.empty();
    const std::string body =
        tracker_.announce(query, remote, std::chrono::steady_clock::now(), member);
    ResponseHead head;
    head.headers.add("Content-Type", "text/plain");
    RequestLog log;  // announces are frequent: not logged per request
    co_await mirror::send_body(out, std::move(head), body, log);
  }

  HttpHandler& api_;
  Publisher& publisher_;
  std::string token_;
  std::string admin_password_;  // empty: none
  CopyKeeper* copies_ = nullptr;
  const SiteAuthority* site_;
  Tracker tracker_;
  AgentRegistry agents_;
  Preheater* preheater_ = nullptr;
};

PublisherOptions publisher_options(const SupernodeConfig& config, std::string root_cert) {
  PublisherOptions p;
  p.chunk_size = config.swarm.chunk_size;
  p.min_chunk_size = config.swarm.min_chunk_size;
  p.chunk_time = config.swarm.chunk_time;
  p.piece_size = static_cast<int>(config.swarm.piece_size);
  p.idle = config.swarm.seed_idle;
  p.root_cert = std::move(root_cert);
  return p;
}

}  // namespace

// Declared in dependency order: the front and publisher go before the swarm and the node.
struct Supernode::Impl {
  ~Impl() { Metrics::get().forget(this); }
  std::optional<SiteAuthority> site;
  std::unique_ptr<mirror::MirrorNode> node;
  std::unique_ptr<p2p::Swarm> swarm;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<Front> front;
  std::unique_ptr<Preheater> preheater;
  std::unique_ptr<CopyKeeper> copies;
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
  options.tls = TlsFiles{config.tls.cert, config.tls.key, config.site.ca_cert};
  options.drain_timeout = config.drain_timeout;
  options.metrics_listen = config.metrics_listen;
  options.role = "supernode";
  options.admin_token = *token;
  // Agents send their request as soon as they connect: a connection that sends nothing for
  // 5 s is not an agent (docs/security.md "Connection floods").
  options.limits.header_timeout = std::chrono::seconds(5);
  options.honour_forwarded_credentials = true;
  auto impl = std::make_unique<Impl>();
  p2p::SwarmOptions swarm_options;
  if (!config.site.ca_cert.empty()) {
    auto site =
        SiteAuthority::load(config.site.ca_cert, config.site.ca_key, config.site.member_validity);
    if (!site) return site.error();
    impl->site = std::move(*site);
    // The supernode is a member like the agents: a key of its own, a certificate from the CA.
    auto key = pki::generate_key();
    if (!key) return key.error();
    auto pub = pki::public_key_der(*key);
    if (!pub) return pub.error();
    auto member = impl->site->issue_member(*pub);
    if (!member) return member.error();
    auto dh = pki::dh_params();
    if (!dh) return dh.error();
    swarm_options.identity = p2p::Identity{member->certificate, *key, *dh};
  } else {
    LOG_WARN(
        "an open site: the swarm is plaintext and any holder of a chunk's metainfo can "
        "download it; set site.ca_cert and site.ca_key (docs/security.md)");
  }
  auto node = mirror::MirrorNode::create(options, ioc, clock);
  if (!node) return node.error();
  impl->node = std::move(*node);
  swarm_options.listen = config.p2p_listen;
  swarm_options.upload_rate_limit = static_cast<int>(config.swarm.upload_rate_limit);
  auto swarm = p2p::Swarm::start(ioc.get_executor(), swarm_options);
  if (!swarm) return swarm.error();
  impl->swarm = std::move(*swarm);
  impl->publisher = std::make_unique<Publisher>(
      *impl->node, *impl->swarm,
      publisher_options(config, impl->site ? impl->site->ca_certificate() : std::string()),
      ioc.get_executor());
  std::string admin_password;
  if (!config.admin_password_file.empty()) {
    auto read = read_secret_file(config.admin_password_file);
    if (!read) return read.error();
    if (*read == *token) {
      return Error(
          Errc::kConfigInvalid,
          "admin_password_file holds the cluster token: give people a secret of their own");
    }
    admin_password = std::move(*read);
  }
  impl->front =
      std::make_unique<Front>(impl->node->mirror(), *impl->publisher, *token,
                              std::move(admin_password), impl->site ? &*impl->site : nullptr);
  impl->node->set_front(impl->front.get());
  impl->preheater =
      std::make_unique<Preheater>(ioc.get_executor(), *impl->node, impl->front->registry(), *token);
  impl->front->set_preheater(impl->preheater.get());
  impl->copies = std::make_unique<CopyKeeper>(
      ioc.get_executor(), impl->front->registry(), *impl->preheater, *token,
      config.data_dir + "/copy_rules.json", config.copy_rule_interval);
  impl->front->set_copies(impl->copies.get());
  // Sampled at each scrape (docs/operations.md "Metrics").
  Metrics& m = Metrics::get();
  Front* front = impl->front.get();
  m.add_sampled(impl.get(),
                {"layerswarm_tracker_announces_total",
                 "BitTorrent announces answered by the tracker",
                 true,
                 {},
                 [front] { return static_cast<double>(front->tracker().announces()); }});
  m.add_sampled(
      impl.get(),
      {"layerswarm_tracker_swarms", "Chunk torrents the tracker knows", false, {}, [front] {
         return static_cast<double>(front->tracker().swarms());
       }});
  m.add_sampled(impl.get(), {"layerswarm_agents",
                             "Agents seen (with the token) in the last 5 minutes",
                             false,
                             {},
                             [front] { return static_cast<double>(front->known_agents()); }});
  p2p::add_swarm_metrics(impl.get(), *impl->swarm);
  return std::unique_ptr<Supernode>(new Supernode(std::move(impl)));
}

const std::vector<std::string>& Supernode::endpoints() const { return impl_->node->endpoints(); }
const std::string& Supernode::metrics_endpoint() const { return impl_->node->metrics_endpoint(); }
const mirror::Counters& Supernode::counters() const { return impl_->node->counters(); }
void Supernode::start() {
  impl_->node->start();
  impl_->copies->start();
}
void Supernode::cut_shutdown() { impl_->node->cut_shutdown(); }
Task<void> Supernode::shutdown() {
  impl_->copies->stop();
  co_await impl_->node->shutdown();
}

}  // namespace layerswarm::supernode
