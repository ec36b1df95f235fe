// An HTTP/1.1 server shell on Beast: accepts on one or more listeners (plain or TLS), reads
// request heads with limits and timeouts, and hands each request to an HttpHandler with a
// ResponseWriter for the answer. Bodies are framed by Content-Length only (no chunking, no
// compression). A TLS ClientHello on a plain listener gets an HTTP 400 so Go clients fall
// back to http (PROTOCOL.md 1, skopeo).
//
// Threading: everything runs on the io_context passed in, which must be run by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/async.h"
#include "common/http_types.h"
#include "common/result.h"

namespace boost::asio {
class io_context;
}

namespace layerswarm {

// The answer to one request. Owned by the connection; valid for the duration of
// HttpHandler::handle().
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // Sends the status line and headers. Called at most once per request, before any body.
  // For HEAD requests the body calls below do nothing.
  virtual Task<boost::system::error_code> write_head(ResponseHead head) = 0;
  // Sends body bytes; `data` must stay valid until the call completes.
  virtual Task<boost::system::error_code> write_body(std::string_view data) = 0;
  // write_head() and write_body(body) in one system call (one TCP segment for a small answer:
  // manifests, errors). Sets the head's content_length to the body's size.
  virtual Task<boost::system::error_code> write_whole(ResponseHead head, std::string_view body) = 0;
  // Sends `length` bytes of the open file `fd` from `offset` (sendfile on plain TCP). The
  // caller keeps `fd` open until the call completes.
  virtual Task<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                     std::uint64_t length) = 0;
  // Ends the connection at once (TCP reset) so the client sees a truncated response. Used when
  // bytes already promised turn out to be wrong or unavailable.
  virtual void abort() = 0;

  virtual bool head_written() const = 0;
  // Body bytes sent so far (0 for HEAD).
  virtual std::uint64_t body_bytes() const = 0;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Answers `request` through `out`. Must not throw for bad input (answer an error instead);
  // an exception is logged and turns into a 500 or an aborted connection.
  virtual Task<void> handle(HttpRequest request, ResponseWriter& out) = 0;
};

// Connection limits (docs/security.md "Connection floods"). One address holds at most
// `max_per_address` connections (further ones are closed at accept, logged once per episode);
// from half of `max_connections` on ("pressure") connections waiting for a request head get the
// short timeouts, and at the limit idle connections are closed to make room before a new one is
// refused. `max_connections` is also capped by the descriptor limit (half of it, less a reserve).
struct ServerLimits {
  std::size_t header_limit = 16 * 1024;
  std::size_t max_connections = 4096;
  std::size_t max_per_address = 512;
  std::chrono::milliseconds header_timeout{30'000};  // to receive a request head
  std::chrono::milliseconds idle_timeout{120'000};   // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{60'000};   // a write without progress
  std::chrono::milliseconds pressure_header_timeout{2'000};
  std::chrono::milliseconds pressure_idle_timeout{1'000};
};

struct TlsFiles {
  std::string cert_file;  // PEM chain
  std::string key_file;   // PEM private key
  // PEM CA: clients may present a certificate it signed (mutual TLS); the request then carries
  // its common name (HttpRequest::client_identity). A client without one is served as before;
  // one whose certificate does not verify fails the handshake.
  std::string client_ca_file = {};
};

class HttpServer {
 public:
  HttpServer(asio::io_context& ioc, HttpHandler& handler, ServerLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds "ip:port" (port 0: an ephemeral port); with `tls`, serves HTTPS there.
  // Returns the bound "ip:port". Errors: kConfigInvalid (bad address, unreadable
  // certificate or key), socket errors (address in use, permission).
  Result<std::string> listen(const std::string& address, const std::optional<TlsFiles>& tls);
  // Starts the accept loops of every listener.
  void start();
  // Stops accepting and closes idle keep-alive connections; busy connections close after
  // their current response.
  void stop_accepting();
  // Completes when no connection is open, or at `deadline`, after closing what remains.
  Task<void> drain(SteadyTime deadline);
  // Ends a drain in progress now: its remaining connections are closed.
  void cut_drain();
  std::size_t open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace layerswarm
