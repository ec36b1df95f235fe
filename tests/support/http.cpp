#include "tests/support/http.h"

#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>

#include "common/async.h"
#include "common/digest.h"

namespace layerswarm::test {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

std::pair<std::string, std::string> split_host_port(const std::string& hp) {
  const auto colon = hp.rfind(':');
  return {hp.substr(0, colon), hp.substr(colon + 1)};
}

struct Call {
  std::string host_port, method, target, body;
  HeaderList headers;
  HttpResult* result;
};

Task<void> do_request(Call call) {
  auto ex = co_await asio::this_coro::executor;
  HttpResult& r = *call.result;
  error_code ec;
  tcp::resolver resolver(ex);
  const auto [host, port] = split_host_port(call.host_port);
  auto endpoints =
      co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    r.error = "resolve: " + ec.message();
    co_return;
  }
  beast::tcp_stream stream(ex);
  co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    r.error = "connect: " + ec.message();
    co_return;
  }
  http::request<http::string_body> req;
  req.method_string(call.method);
  req.target(call.target);
  req.version(11);
  req.set(http::field::host, call.host_port);
  req.set(http::field::connection, "close");
  for (const auto& [n, v] : call.headers) req.insert(n, v);
  req.body() = call.body;
  if (!call.body.empty() || call.method == "PUT" || call.method == "POST") req.prepare_payload();
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    r.error = "write: " + ec.message();
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (call.method == "HEAD") parser.skip(true);
  co_await http::async_read_header(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    r.error = "read header: " + ec.message();
    co_return;
  }
  r.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(f.value());
  }
  if (!parser.is_done()) {
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
  }
  r.body = parser.get().body();
  r.complete = !ec && parser.is_done();
  if (ec) r.error = "read body: " + ec.message();
}

Task<void> do_raw(std::string host_port, std::string bytes, std::string* out) {
  auto ex = co_await asio::this_coro::executor;
  error_code ec;
  tcp::resolver resolver(ex);
  const auto [host, port] = split_host_port(host_port);
  auto endpoints =
      co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  tcp::socket sock(ex);
  co_await asio::async_connect(sock, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  co_await asio::async_write(sock, asio::buffer(bytes),
                             asio::redirect_error(asio::use_awaitable, ec));
  char buf[4096];
  for (int i = 0; i < 10000 && !ec; ++i) {
    const std::size_t n = co_await sock.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    out->append(buf, n);
  }
}

}  // namespace

HttpResult http_request(const std::string& host_port, const std::string& method,
                        const std::string& target, const HeaderList& headers,
                        const std::string& body, std::chrono::milliseconds timeout) {
  HttpResult r;
  asio::io_context ioc;
  Call call{host_port, method, target, body, headers, &r};
  asio::co_spawn(ioc, do_request(std::move(call)), asio::detached);
  ioc.run_for(timeout);
  if (!ioc.stopped() && r.error.empty()) r.error = "timeout";
  return r;
}

std::string raw_exchange(const std::string& host_port, const std::string& bytes,
                         std::chrono::milliseconds timeout) {
  std::string out;
  asio::io_context ioc;
  asio::co_spawn(ioc, do_raw(host_port, bytes, &out), asio::detached);
  ioc.run_for(timeout);
  return out;
}

std::string sha256_hex(const std::string& data) {
  return std::string(Digest::sha256_of(data).hex());
}

}  // namespace layerswarm::test
