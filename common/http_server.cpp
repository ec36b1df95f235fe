#include "common/http_server.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/resource.h>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <list>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/log.h"

namespace layerswarm {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kFileChunk = 256 * 1024;          // pread size on TLS connections
constexpr std::uint64_t kYieldEvery = 8 * 1024 * 1024;  // let other connections run
constexpr std::uint64_t kNagleMinimum = 1024 * 1024;    // sendfile with Nagle on from here
constexpr std::size_t kLingerBytes = 1024 * 1024;       // unread request body dropped at close
constexpr std::chrono::seconds kLingerTime{2};

// The common name of the certificate the client presented, when the handshake verified it
// (TlsFiles::client_ca_file); empty otherwise.
std::string verified_client(SSL* ssl) {
  X509* peer = SSL_get1_peer_certificate(ssl);
  if (!peer) return {};
  std::string name;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* subject = X509_get_subject_name(peer);
    const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (i >= 0) {
      const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
      name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
  }
  X509_free(peer);
  return name;
}

// The part of a connection the server needs for draining.
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void close_if_idle() = 0;
  virtual void force_close() = 0;
};

}  // namespace

struct HttpServer::Impl {
  struct Listener {
    tcp::acceptor acceptor;
    std::unique_ptr<ssl::context> tls;
  };

  Impl(asio::io_context& ioc_in, HttpHandler& handler_in, ServerLimits limits_in)
      : ioc(ioc_in), handler(handler_in), limits(limits_in) {
    limits.max_connections = std::min(limits.max_connections, descriptor_budget());
    limits.max_per_address =
        std::max<std::size_t>(1, std::min(limits.max_per_address, limits.max_connections / 4));
  }

  Task<void> accept_loop(Listener* listener);
  void on_closed(std::list<std::shared_ptr<ConnectionBase>>::iterator it,
                 const std::string& address) {
    connections.erase(it);
    auto a = per_address.find(address);
    if (a != per_address.end() && --a->second == 0) {
      per_address.erase(a);
      warned.erase(address);  // a new episode is logged again
    }
    if (!under_pressure()) warned.erase("*");
    if (connections.empty()) all_closed.notify_all();
  }
  bool under_pressure() const { return connections.size() * 2 >= limits.max_connections; }
  // Connections may use half the descriptors the process may open, less a reserve for the
  // cache, the index and the swarm.
  static std::size_t descriptor_budget() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 1 << 20;
    const auto soft = static_cast<std::size_t>(rl.rlim_cur);
    return soft > 512 ? (soft - 256) / 2 : 128;
  }

  asio::io_context& ioc;
  HttpHandler& handler;
  ServerLimits limits;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::list<std::shared_ptr<ConnectionBase>> connections;
  std::unordered_map<std::string, std::size_t> per_address;  // open connections per remote IP
  std::unordered_set<std::string> warned;                    // addresses refused this episode
  std::chrono::steady_clock::time_point last_sweep{};
  Notifier all_closed;
  bool stopping = false;
  bool drain_cut = false;
};

namespace {

// A parse error (not a closed or timed-out connection) deserves a 400.
bool is_malformed_request(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

// One client connection: reads requests one after another and answers them through the
// ResponseWriter interface. Stream is beast::tcp_stream or beast::ssl_stream of one.
template <class Stream>
class Connection final : public ConnectionBase,
                         public ResponseWriter,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(Stream stream, HttpServer::Impl& server, std::string address)
      : stream_(std::move(stream)),
        server_(server),
        watchdog_(stream_.get_executor()),
        address_(std::move(address)) {}

  void set_position(std::list<std::shared_ptr<ConnectionBase>>::iterator it) { position_ = it; }

  Task<void> run() {
    auto self = this->shared_from_this();  // alive until the loop ends
    error_code ec;
    remote_ = endpoint_text(tcp_layer().socket().remote_endpoint(ec));
    const bool ready = co_await prepare();
    while (ready && !closed_) {
      const bool more = co_await serve_one();
      if (!more) break;
    }
    co_await shutdown();
    server_.on_closed(position_, address_);
  }

  // ConnectionBase
  void close_if_idle() override {
    if (!busy_) tcp_layer().cancel();
  }
  void force_close() override { abort(); }

  // ResponseWriter
  Task<error_code> write_head(ResponseHead head) override {
    co_return co_await write_all(asio::buffer(head_text(head)));
  }

  Task<error_code> write_whole(ResponseHead head, std::string_view body) override {
    head.content_length = body.size();
    const std::string text = head_text(head);
    if (is_head_ || body.empty()) co_return co_await write_all(asio::buffer(text));
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(text),
                                                    asio::buffer(body.data(), body.size())};
    error_code ec;
    tcp_layer().expires_after(server_.limits.write_timeout);
    co_await asio::async_write(stream_, buffers, asio::redirect_error(asio::use_awaitable, ec));
    tcp_layer().expires_never();
    if (!ec) body_bytes_ += body.size();
    co_return ec;
  }

  Task<error_code> write_body(std::string_view data) override {
    if (is_head_ || data.empty()) co_return error_code{};
    if (body_bytes_ + data.size() > declared_) co_return make_error_code(Errc::kInternal);
    const error_code ec = co_await write_all(asio::buffer(data.data(), data.size()));
    if (!ec) body_bytes_ += data.size();
    co_return ec;
  }

  Task<error_code> write_file(int fd, std::uint64_t offset, std::uint64_t length) override {
    if (is_head_ || length == 0) co_return error_code{};
    if (body_bytes_ + length > declared_) co_return make_error_code(Errc::kInternal);
    if constexpr (kIsTls<Stream>) {
      co_return co_await copy_file(fd, offset, length);
    } else {
      co_return co_await send_file(fd, offset, length);
    }
  }

  void abort() override {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    auto& sock = tcp_layer().socket();
    if (sock.is_open()) {
      sock.set_option(asio::socket_base::linger(true, 0), ec);  // RST, not FIN
      sock.close(ec);
    }
  }

  bool head_written() const override { return head_written_; }
  std::uint64_t body_bytes() const override { return body_bytes_; }

 private:
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  static std::string endpoint_text(const tcp::endpoint& ep) {
    return ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  // TLS: handshake. Plain: answer a TLS ClientHello with 400 (skopeo's http fallback).
  Task<bool> prepare() {
    error_code ec;
    tcp_layer().expires_after(server_.under_pressure() ? server_.limits.pressure_header_timeout
                                                       : server_.limits.header_timeout);
    if constexpr (kIsTls<Stream>) {
      co_await stream_.async_handshake(ssl::stream_base::server,
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        LOG_DEBUG("tls handshake with {} failed: {}", remote_, ec.message());
        co_return false;
      }
      client_identity_ = verified_client(stream_.native_handle());
      co_return true;
    } else {
      const std::size_t n = co_await stream_.async_read_some(
          buffer_.prepare(4096), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
      buffer_.commit(n);
      const auto* first = static_cast<const unsigned char*>(buffer_.data().data());
      if (n > 0 && first[0] == 0x16) {
        static constexpr std::string_view kAnswer =
            "HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-Length: 48\r\n\r\n"
            "Client sent an HTTPS request to an HTTP server.\n";
        co_await write_all(asio::buffer(kAnswer.data(), kAnswer.size()));
        LOG_DEBUG("answered a TLS ClientHello from {} with 400", remote_);
        co_return false;
      }
      co_return true;
    }
  }

  // Reads and answers one request. Returns false when the connection must close.
  Task<bool> serve_one() {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(server_.limits.header_limit));
    const bool pressure = server_.under_pressure();
    tcp_layer().expires_after(
        requests_ == 0
            ? (pressure ? server_.limits.pressure_header_timeout : server_.limits.header_timeout)
            : (pressure ? server_.limits.pressure_idle_timeout : server_.limits.idle_timeout));
    error_code ec;
    co_await http::async_read_header(stream_, buffer_, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == http::error::header_limit) {
        co_await answer_plain(431, "request header too large");
      } else if (is_malformed_request(ec)) {
        co_await answer_plain(400, "malformed request");
      }
      co_return false;
    }
    tcp_layer().expires_never();
    busy_ = true;
    ++requests_;
    const auto& msg = parser.get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.remote = remote_;
    req.client_identity = client_identity_;
    req.secure = kIsTls<Stream>;
    for (const auto& field : msg) {
      req.headers.add(std::string(field.name_string()), std::string(field.value()));
    }
    has_body_ = parser.chunked() || parser.content_length().value_or(0) > 0;
    keep_alive_ = msg.keep_alive() && !has_body_ && !server_.stopping;
    is_head_ = msg.method() == http::verb::head;
    head_written_ = false;
    declared_ = body_bytes_ = 0;

    try {
      co_await server_.handler.handle(std::move(req), *this);
    } catch (const std::exception& e) {
      LOG_ERROR("request handler failed: {}", e.what());
      if (head_written_) abort();
    }
    if (closed_) co_return false;
    if (!head_written_) {
      co_await answer_plain(500, "internal error");
      co_return false;
    }
    busy_ = false;
    if (body_bytes_ != declared_) {  // a response cut short must not look complete
      abort();
      co_return false;
    }
    co_return keep_alive_ && !server_.stopping;
  }

  Task<void> answer_plain(int status, std::string_view body) {
    ResponseHead head;
    head.status = status;
    head.headers.add("Content-Type", "text/plain");
    head.content_length = body.size();
    keep_alive_ = false;
    is_head_ = false;
    co_await write_whole(std::move(head), body);
  }

  // The status line and headers of `head`; marks the head written.
  std::string head_text(const ResponseHead& head) {
    std::string text = "HTTP/1.1 " + std::to_string(head.status) + " ";
    text += reason_phrase(head.status);
    text += "\r\n";
    for (const auto& [name, value] : head.headers) {
      text += name + ": ";
      for (char c : value) text.push_back(c == '\r' || c == '\n' ? ' ' : c);  // no injected lines
      text += "\r\n";
    }
    text += "Content-Length: " + std::to_string(head.content_length) + "\r\n";
    text += "Docker-Distribution-API-Version: registry/2.0\r\n";
    if (head.close) keep_alive_ = false;
    if (!keep_alive_ || server_.stopping) {
      keep_alive_ = false;
      text += "Connection: close\r\n";
    }
    text += "\r\n";
    head_written_ = true;
    declared_ = is_head_ ? 0 : head.content_length;
    return text;
  }

  Task<error_code> write_all(asio::const_buffer buf) {
    error_code ec;
    tcp_layer().expires_after(server_.limits.write_timeout);
    co_await asio::async_write(stream_, buf, asio::redirect_error(asio::use_awaitable, ec));
    tcp_layer().expires_never();
    co_return ec;
  }

  // Plain TCP: sendfile(2) from the page cache, waiting for writability on EAGAIN.
  Task<error_code> send_file(int fd, std::uint64_t offset, std::uint64_t length) {
    auto& sock = tcp_layer().socket();
    if (!sock.native_non_blocking()) {  // once per connection: sendfile must not block
      error_code ec;
      sock.native_non_blocking(true, ec);
      if (ec) co_return ec;
    }
    // Nagle on while the kernel splices the file: full-size segments (nginx does the same; with
    // TCP_NODELAY the loopback rate drops ~15%). Turning NODELAY back on afterwards pushes the
    // tail out at once.
    // Small sends (a download's next 64 KiB) keep NODELAY: they gain nothing and the toggle
    // costs two syscalls each.
    if (length < kNagleMinimum) co_return co_await send_file_loop(fd, offset, length);
    error_code ignored;
    sock.set_option(tcp::no_delay(false), ignored);
    const error_code ec = co_await send_file_loop(fd, offset, length);
    sock.set_option(tcp::no_delay(true), ignored);
    co_return ec;
  }

  Task<error_code> send_file_loop(int fd, std::uint64_t offset, std::uint64_t length) {
    auto& sock = tcp_layer().socket();
    off_t off = static_cast<off_t>(offset);
    std::uint64_t since_yield = 0;
    while (length > 0) {
      const std::size_t want = length < (1u << 30) ? static_cast<std::size_t>(length) : (1u << 30);
      const ssize_t n = ::sendfile(sock.native_handle(), fd, &off, want);
      if (n > 0) {
        length -= static_cast<std::uint64_t>(n);
        body_bytes_ += static_cast<std::uint64_t>(n);
        since_yield += static_cast<std::uint64_t>(n);
        if (since_yield >= kYieldEvery && length > 0) {
          since_yield = 0;
          co_await asio::post(stream_.get_executor(), asio::use_awaitable);
          if (closed_) co_return asio::error::operation_aborted;
        }
        continue;
      }
      if (n == 0) co_return make_error_code(Errc::kStorage);  // the file is shorter
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return error_code(errno, boost::system::system_category());
      const error_code wait_ec = co_await wait_writable();
      if (wait_ec) co_return wait_ec;
    }
    co_return error_code{};
  }

  // Waits until the socket can take more bytes, at most write_timeout.
  Task<error_code> wait_writable() {
    auto& sock = tcp_layer().socket();
    watchdog_.expires_after(server_.limits.write_timeout);
    auto self = this->shared_from_this();
    watchdog_.async_wait(WatchdogHandler{self});
    error_code ec;
    co_await sock.async_wait(tcp::socket::wait_write,
                             asio::redirect_error(asio::use_awaitable, ec));
    watchdog_.cancel();
    co_return ec;
  }

  struct WatchdogHandler {
    std::shared_ptr<Connection> self;
    void operator()(error_code ec) const {
      if (!ec) {
        LOG_DEBUG("write to {} made no progress; closing", self->remote_);
        self->abort();
      }
    }
  };

  // TLS: no sendfile; pread chunks and write them through the TLS stream.
  Task<error_code> copy_file(int fd, std::uint64_t offset, std::uint64_t length) {
    if (file_buffer_.empty()) file_buffer_.resize(kFileChunk);
    while (length > 0) {
      const std::size_t want = length < kFileChunk ? static_cast<std::size_t>(length) : kFileChunk;
      const ssize_t n = ::pread(fd, file_buffer_.data(), want, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) co_return make_error_code(Errc::kStorage);
      const error_code ec =
          co_await write_all(asio::buffer(file_buffer_.data(), static_cast<std::size_t>(n)));
      if (ec) co_return ec;
      offset += static_cast<std::uint64_t>(n);
      length -= static_cast<std::uint64_t>(n);
      body_bytes_ += static_cast<std::uint64_t>(n);
    }
    co_return error_code{};
  }

  // A graceful close. When the client sent a body we never read (a push answered 405), closing
  // with unread bytes would reset the connection and could destroy the answer before the
  // client reads it: read and drop up to kLingerBytes for at most kLingerTime first.
  Task<void> shutdown() {
    if (closed_) co_return;
    error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (has_body_ && !ec) {
      tcp_layer().expires_after(kLingerTime);
      std::array<char, 16 * 1024> sink;
      std::size_t dropped = 0;
      while (!ec && dropped < kLingerBytes) {
        const std::size_t n = co_await tcp_layer().async_read_some(
            asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        dropped += n;
      }
    }
    closed_ = true;
    tcp_layer().close();
  }

  Stream stream_;
  HttpServer::Impl& server_;
  asio::steady_timer watchdog_;
  std::list<std::shared_ptr<ConnectionBase>>::iterator position_;
  beast::flat_buffer buffer_;
  std::vector<char> file_buffer_;
  std::string remote_;
  std::string address_;          // the remote IP (per-address accounting)
  std::string client_identity_;  // a verified client certificate's common name
  std::uint64_t requests_ = 0;
  std::uint64_t declared_ = 0;
  std::uint64_t body_bytes_ = 0;
  bool keep_alive_ = true;
  bool has_body_ = false;
  bool is_head_ = false;
  bool head_written_ = false;
  bool busy_ = false;
  bool closed_ = false;
};

template <class Stream>
void spawn_connection(HttpServer::Impl& server, Stream stream, const std::string& address) {
  auto conn = std::make_shared<Connection<Stream>>(std::move(stream), server, address);
  ++server.per_address[address];
  server.connections.push_back(conn);
  conn->set_position(std::prev(server.connections.end()));
  asio::co_spawn(server.ioc, conn->run(), asio::detached);
}

Result<tcp::endpoint> parse_endpoint(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return Error(Errc::kConfigInvalid, "address needs a port");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  const auto ip = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return Error(Errc::kConfigInvalid, "not an IP address: '" + host + "'");
  unsigned long port = 0;
  try {
    port = std::stoul(address.substr(colon + 1));
  } catch (const std::exception&) {
    return Error(Errc::kConfigInvalid, "bad port in '" + address + "'");
  }
  if (port > 65535) return Error(Errc::kConfigInvalid, "bad port in '" + address + "'");
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

}  // namespace

Task<void> HttpServer::Impl::accept_loop(Listener* listener) {
  asio::steady_timer backoff(ioc);
  while (!stopping) {
    error_code ec;
    tcp::socket sock =
        co_await listener->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping || ec == asio::error::operation_aborted) break;
    if (ec) {  // EMFILE and the like: back off instead of spinning
      LOG_WARN("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    const std::string address = sock.remote_endpoint(ec).address().to_string();
    if (ec) continue;  // already gone
    if (auto a = per_address.find(address);
        a != per_address.end() && a->second >= limits.max_per_address) {
      if (warned.insert(address).second) {
        LOG_WARN(
            "{} holds {} connections, the most one address may; refusing its new ones "
            "until some close (logged once)",
            address, a->second);
      }
      continue;  // the socket closes here
    }
    if (connections.size() >= limits.max_connections) {
      // Make room: connections waiting for a request give way to new ones (a sweep at most
      // every 100 ms, so that a flood does not turn every accept into a walk of the list).
      const auto now = std::chrono::steady_clock::now();
      if (now - last_sweep >= std::chrono::milliseconds(100)) {
        last_sweep = now;
        for (auto& c : connections) c->close_if_idle();
      }
      if (warned.insert("*").second) {
        LOG_WARN(
            "connection limit {} reached; closing idle connections, refusing new ones "
            "meanwhile (logged once)",
            limits.max_connections);
      }
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    if (listener->tls) {
      spawn_connection(
          *this,
          beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(sock)), *listener->tls),
          address);
    } else {
      spawn_connection(*this, beast::tcp_stream(std::move(sock)), address);
    }
  }
}

HttpServer::HttpServer(asio::io_context& ioc, HttpHandler& handler, ServerLimits limits)
    : impl_(std::make_unique<Impl>(ioc, handler, limits)) {}

HttpServer::~HttpServer() = default;

Result<std::string> HttpServer::listen(const std::string& address,
                                       const std::optional<TlsFiles>& tls) {
  auto endpoint = parse_endpoint(address);
  if (!endpoint) return endpoint.error();
  auto listener =
      std::make_unique<Impl::Listener>(Impl::Listener{tcp::acceptor(impl_->ioc), nullptr});
  if (tls) {
    listener->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    listener->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                               ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                               ssl::context::no_tlsv1_1);
    error_code ec;
    listener->tls->use_certificate_chain_file(tls->cert_file, ec);
    if (ec) return Error(Errc::kConfigInvalid, "cannot load TLS certificate " + tls->cert_file);
    listener->tls->use_private_key_file(tls->key_file, ssl::context::pem, ec);
    if (ec) return Error(Errc::kConfigInvalid, "cannot load TLS key " + tls->key_file);
    if (!tls->client_ca_file.empty()) {
      listener->tls->load_verify_file(tls->client_ca_file, ec);
      if (ec) return Error(Errc::kConfigInvalid, "cannot load client CA " + tls->client_ca_file);
      listener->tls->set_verify_mode(ssl::verify_peer, ec);
    }
  }
  error_code ec;
  auto& acc = listener->acceptor;
  acc.open(endpoint->protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(*endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(ec, "cannot listen on " + address + ": " + ec.message());
  const auto bound = acc.local_endpoint(ec);
  impl_->listeners.push_back(std::move(listener));
  const std::string host = bound.address().to_string();
  return (bound.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(bound.port());
}

void HttpServer::start() {
  for (auto& l : impl_->listeners) {
    asio::co_spawn(impl_->ioc, impl_->accept_loop(l.get()), asio::detached);
  }
}

void HttpServer::stop_accepting() {
  impl_->stopping = true;
  for (auto& l : impl_->listeners) {
    error_code ec;
    l->acceptor.close(ec);
  }
  // Copy: closing can complete synchronously and unlink entries.
  auto conns = impl_->connections;
  for (auto& c : conns) c->close_if_idle();
}

Task<void> HttpServer::drain(SteadyTime deadline) {
  while (!impl_->connections.empty() && !impl_->drain_cut &&
         std::chrono::steady_clock::now() < deadline) {
    co_await impl_->all_closed.wait_until(deadline);
  }
  auto conns = impl_->connections;
  for (auto& c : conns) c->force_close();
}

void HttpServer::cut_drain() {
  impl_->drain_cut = true;
  impl_->all_closed.notify_all();
}

std::size_t HttpServer::open_connections() const { return impl_->connections.size(); }

}  // namespace layerswarm
