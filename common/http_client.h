// An HTTP/1.1 client for upstream registries, token realms and redirect targets: keep-alive
// connection reuse per origin, TLS through OpenSSL (system CAs plus an optional CA file, or no
// verification for tests), connect and read timeouts, streaming response bodies.
// It sends exactly one request per call: auth, redirects and retries belong to the caller
// (RegistryClient).
//
// Threading: one HttpClient per io_context thread; responses are used on the same thread.
// A response may outlive the HttpClient that created it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/async.h"
#include "common/http_types.h"
#include "common/result.h"
#include "common/url.h"

namespace layerswarm {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  // DNS, TCP and TLS handshake
  std::chrono::milliseconds read_timeout{30'000};     // any single read or write
  std::string ca_file;                                // PEM, trusted besides the system store
  bool insecure_skip_verify = false;                  // tests only
  std::size_t max_idle_per_origin = 8;
  std::chrono::milliseconds idle_keep{30'000};  // reuse an idle connection only this long
  std::string user_agent = "layerswarm";
  // Refuse to connect to internal addresses (common/address_policy.h): for registries nobody
  // configured, their redirects and token realms (docs/security.md "Request forgery").
  bool deny_internal = false;
};

struct ClientRequest {
  std::string method = "GET";
  Url url;
  Headers headers;  // Host, User-Agent and Accept-Encoding: identity are added
  // Limit for sending the request and receiving the response head (default: read_timeout).
  std::optional<std::chrono::milliseconds> timeout;
};

class ClientResponse {
 public:
  virtual ~ClientResponse() = default;

  int status = 0;
  Headers headers;
  std::optional<std::uint64_t> content_length;

  // Reads up to `size` body bytes into `buf`; returns 0 at the end of the body.
  // Errors: timeouts, resets and a body cut short (beast/asio categories).
  virtual Task<Result<std::size_t>> read_some(char* buf, std::size_t size) = 0;
  virtual bool body_done() const = 0;

  // Reads the whole body. Errors: kTooLarge past `limit` bytes, and those of read_some.
  Task<Result<std::string>> read_all(std::size_t limit);
};

class HttpClient {
 public:
  // Errors at construction are impossible; an unreadable ca_file is reported by send().
  HttpClient(asio::any_io_executor executor, ClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` and returns once the response head has arrived; the body is read through
  // the response. A reused connection that turns out closed is retried once on a new one.
  // Errors: kConfigInvalid (CA file), DNS/connect/TLS/timeout errors, kBadUpstreamResponse,
  // kDenied (deny_internal and the host is, or resolves only to, an internal address: no
  // connection is made).
  Task<Result<std::unique_ptr<ClientResponse>>> send(ClientRequest request);

  const ClientOptions& options() const;
  // Loads the TLS context (system CAs, ca_file) now rather than on the first https request.
  void prepare_tls();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace layerswarm
