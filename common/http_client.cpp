#include "common/http_client.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "common/address_policy.h"
#include "common/log.h"

namespace layerswarm {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// One upstream connection, plain or TLS.
struct Conn {
  std::string origin;
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  SteadyTime idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
};

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct HttpClient::Impl : std::enable_shared_from_this<HttpClient::Impl> {
  Impl(asio::any_io_executor ex, ClientOptions opts)
      : executor(std::move(ex)), options(std::move(opts)) {}

  // The TLS context, made on first use: loading the system CA store costs ~20 ms, which an
  // http-only upstream should never pay.
  ssl::context& tls_context() {
    if (tls) return *tls;
    tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3);
    error_code ec;
    tls->set_default_verify_paths(ec);
    if (!options.ca_file.empty()) {
      tls->load_verify_file(options.ca_file, ec);
      if (ec) ca_error = "cannot load CA file " + options.ca_file + ": " + ec.message();
    }
    tls->set_verify_mode(options.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);
    return *tls;
  }

  std::unique_ptr<Conn> take(const std::string& origin) {
    auto it = idle.find(origin);
    if (it == idle.end()) return nullptr;
    auto& list = it->second;
    const auto now = std::chrono::steady_clock::now();
    while (!list.empty()) {
      auto conn = std::move(list.back());
      list.pop_back();
      if (now - conn->idle_since < options.idle_keep) return conn;
    }
    return nullptr;
  }

  void put_back(std::unique_ptr<Conn> conn) {
    auto& list = idle[conn->origin];
    if (list.size() >= options.max_idle_per_origin) return;
    conn->idle_since = std::chrono::steady_clock::now();
    conn->lowest().expires_never();
    list.push_back(std::move(conn));
  }

  Task<Result<std::unique_ptr<Conn>>> connect(Url url);

  asio::any_io_executor executor;
  ClientOptions options;
  std::unique_ptr<ssl::context> tls;
  std::string ca_error;
  std::map<std::string, std::vector<std::unique_ptr<Conn>>> idle;
};

namespace {

class Response final : public ClientResponse {
 public:
  Response(std::shared_ptr<HttpClient::Impl> client, std::unique_ptr<Conn> conn,
           std::unique_ptr<http::response_parser<http::buffer_body>> parser)
      : client_(std::move(client)), conn_(std::move(conn)), parser_(std::move(parser)) {
    const auto& msg = parser_->get();
    status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      headers.add(std::string(field.name_string()), std::string(field.value()));
    }
    if (auto len = parser_->content_length()) content_length = *len;
    keep_alive_ = msg.keep_alive();
    // A Content-Length body is read straight from the socket into the caller's buffer: Beast's
    // parser would copy it through a small dynamic buffer, 512 bytes per read.
    raw_ = !parser_->is_done() && !parser_->chunked() && content_length.has_value();
    remaining_ = content_length.value_or(0);
  }

  ~Response() override {
    if (conn_ && keep_alive_ && body_done()) client_->put_back(std::move(conn_));
  }

  bool body_done() const override { return raw_ ? remaining_ == 0 : parser_->is_done(); }

  Task<Result<std::size_t>> read_some(char* buf, std::size_t size) override {
    if (raw_) co_return co_await read_raw(buf, size);
    co_return co_await read_parsed(buf, size);
  }

 private:
  Task<Result<std::size_t>> read_raw(char* buf, std::size_t size) {
    if (remaining_ == 0 || size == 0) co_return std::size_t{0};
    if (!conn_) co_return Error(Errc::kBadUpstreamResponse, "connection already failed");
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size, remaining_));
    auto& pending = conn_->buffer;  // body bytes that arrived with the head
    if (pending.size() > 0) {
      const std::size_t n = std::min(want, pending.size());
      std::memcpy(buf, pending.data().data(), n);
      pending.consume(n);
      remaining_ -= n;
      co_return n;
    }
    conn_->lowest().expires_after(client_->options.read_timeout);
    error_code ec;
    std::size_t n = 0;
    if (conn_->tls) {
      n = co_await conn_->tls->async_read_some(asio::buffer(buf, want),
                                               asio::redirect_error(asio::use_awaitable, ec));
    } else {
      n = co_await conn_->tcp->async_read_some(asio::buffer(buf, want),
                                               asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) co_return fail(ec);
    remaining_ -= n;
    co_return n;
  }

  Task<Result<std::size_t>> read_parsed(char* buf, std::size_t size) {
    for (int spins = 0; spins < 1000; ++spins) {
      if (parser_->is_done()) co_return std::size_t{0};
      if (!conn_) co_return Error(Errc::kBadUpstreamResponse, "connection already failed");
      auto& body = parser_->get().body();
      body.data = buf;
      body.size = size;
      conn_->lowest().expires_after(client_->options.read_timeout);
      error_code ec;
      if (conn_->tls) {
        co_await http::async_read(*conn_->tls, conn_->buffer, *parser_,
                                  asio::redirect_error(asio::use_awaitable, ec));
      } else {
        co_await http::async_read(*conn_->tcp, conn_->buffer, *parser_,
                                  asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return fail(ec);
      const std::size_t n = size - body.size;
      if (n > 0 || parser_->is_done()) co_return n;
    }
    co_return Error(Errc::kBadUpstreamResponse, "upstream body made no progress");
  }

  Error fail(const error_code& ec) {
    conn_.reset();
    if (ec == beast::error::timeout) return Error(Errc::kTimeout, "upstream read timed out");
    if (ec == asio::error::eof) {
      return Error(Errc::kBadUpstreamResponse, "upstream closed the connection mid-body");
    }
    return Error(ec, "upstream body: " + ec.message());
  }

  std::shared_ptr<HttpClient::Impl> client_;
  std::unique_ptr<Conn> conn_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  bool keep_alive_ = false;
  bool raw_ = false;
  std::uint64_t remaining_ = 0;
};

// Writes the request and reads the response head on `stream`.
template <class Stream>
Task<error_code> exchange(Stream& stream, beast::flat_buffer& buffer,
                          http::request<http::empty_body>& req,
                          http::response_parser<http::buffer_body>& parser) {
  error_code ec;
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return ec;
  co_await http::async_read_header(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

}  // namespace

Task<Result<std::unique_ptr<Conn>>> HttpClient::Impl::connect(Url url) {
  auto conn = std::make_unique<Conn>();
  conn->origin = url.origin();
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
  const auto literal = asio::ip::make_address(url.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, url.port);  // no resolver thread for an IP address
  } else {
    ec = {};
    // The guard's handler may run after this frame moved on: it holds the resolver itself.
    auto resolver = std::make_shared<tcp::resolver>(executor);
    asio::steady_timer guard(executor, options.connect_timeout);
    guard.async_wait([resolver](error_code e) {
      if (!e) resolver->cancel();
    });
    const auto results = co_await resolver->async_resolve(
        url.host, std::to_string(url.port), asio::redirect_error(asio::use_awaitable, ec));
    guard.cancel();
    if (ec) co_return Error(ec, "cannot resolve " + url.host + ": " + ec.message());
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  if (options.deny_internal) {
    std::string refused;
    std::vector<tcp::endpoint> allowed;
    for (const auto& e : endpoints) {
      if (is_internal_address(e.address().to_string())) {
        refused = e.address().to_string();
      } else {
        allowed.push_back(e);
      }
    }
    if (allowed.empty()) {
      co_return Error(Errc::kDenied, "refusing to connect to " + url.host + " (" + refused +
                                         "): an internal address, and the registry is not "
                                         "configured on this mirror");
    }
    endpoints = std::move(allowed);
  }

  conn->tcp = std::make_unique<beast::tcp_stream>(executor);
  conn->tcp->expires_after(options.connect_timeout);
  co_await conn->tcp->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (ec == beast::error::timeout)
      co_return Error(Errc::kTimeout, "connect to " + url.authority() + " timed out");
    co_return Error(ec, "cannot connect to " + url.authority() + ": " + ec.message());
  }
  conn->tcp->socket().set_option(tcp::no_delay(true), ec);
  if (!url.tls()) co_return conn;

  ssl::context& context = tls_context();
  if (!ca_error.empty()) co_return Error(Errc::kConfigInvalid, ca_error);
  conn->tls =
      std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*conn->tcp), context);
  conn->tcp.reset();
  if (!is_ip_literal(url.host)) {
    SSL_set_tlsext_host_name(conn->tls->native_handle(), url.host.c_str());
  }
  if (!options.insecure_skip_verify) {
    conn->tls->set_verify_callback(ssl::host_name_verification(url.host), ec);
  }
  co_await conn->tls->async_handshake(ssl::stream_base::client,
                                      asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return Error(ec, "TLS handshake with " + url.authority() + " failed: " + ec.message());
  }
  co_return conn;
}

HttpClient::HttpClient(asio::any_io_executor executor, ClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

HttpClient::~HttpClient() = default;

const ClientOptions& HttpClient::options() const { return impl_->options; }

void HttpClient::prepare_tls() { impl_->tls_context(); }

Task<Result<std::unique_ptr<ClientResponse>>> HttpClient::send(ClientRequest request) {
  http::request<http::empty_body> req;
  req.method_string(request.method);
  req.target(request.url.target);
  req.version(11);
  req.set(http::field::host, request.url.authority());
  req.set(http::field::user_agent, impl_->options.user_agent);
  req.set(http::field::accept_encoding, "identity");
  for (const auto& [name, value] : request.headers) req.insert(name, value);
  const bool is_head = request.method == "HEAD";
  const std::string origin = request.url.origin();

  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Conn> conn = impl_->take(origin);
    const bool reused = conn != nullptr;
    if (!conn) {
      auto fresh = co_await impl_->connect(request.url);
      if (!fresh) co_return fresh.error();
      conn = std::move(*fresh);
    }
    auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser->header_limit(64 * 1024);
    if (is_head) parser->skip(true);
    conn->lowest().expires_after(request.timeout.value_or(impl_->options.read_timeout));
    error_code ec;
    if (conn->tls) {
      ec = co_await exchange(*conn->tls, conn->buffer, req, *parser);
    } else {
      ec = co_await exchange(*conn->tcp, conn->buffer, req, *parser);
    }
    if (ec) {
      // A kept-alive connection the server already closed: once more on a new one.
      if (reused && ec != beast::error::timeout) continue;
      if (ec == beast::error::timeout) {
        co_return Error(Errc::kTimeout, request.url.authority() + " did not answer in time");
      }
      co_return Error(ec, "request to " + request.url.authority() + " failed: " + ec.message());
    }
    co_return std::unique_ptr<ClientResponse>(
        std::make_unique<Response>(impl_, std::move(conn), std::move(parser)));
  }
  co_return Error(Errc::kUpstreamUnavailable, "connection to " + origin + " keeps closing");
}

Task<Result<std::string>> ClientResponse::read_all(std::size_t limit) {
  std::string out;
  if (content_length) {
    if (*content_length > limit) co_return Error(Errc::kTooLarge, "response body too large");
    out.reserve(static_cast<std::size_t>(*content_length));
  }
  char buf[16 * 1024];
  while (true) {
    auto n = co_await read_some(buf, sizeof buf);
    if (!n) co_return n.error();
    if (*n == 0) break;
    if (out.size() + *n > limit) co_return Error(Errc::kTooLarge, "response body too large");
    out.append(buf, *n);
  }
  co_return out;
}

}  // namespace layerswarm
