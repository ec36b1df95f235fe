#include "tests/support/slow_proxy.h"

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <list>
#include <thread>

#include "common/async.h"

namespace layerswarm::test {

using tcp = asio::ip::tcp;
using boost::system::error_code;

struct SlowProxy::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::string address;
  std::string upstream_host;
  std::string upstream_port;
  std::size_t rate = 0;
  std::size_t stall_after = 0;
  std::list<std::shared_ptr<tcp::socket>> sockets;
  std::thread thread;
  bool stopped = false;
  std::atomic<std::uint64_t> downstream{0};  // upstream->client bytes forwarded

  Task<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to, bool limit) {
    std::vector<char> buf(64 * 1024);
    asio::steady_timer pace(ioc);
    std::size_t forwarded = 0;
    for (int i = 0; i < 10'000'000; ++i) {
      error_code ec;
      std::size_t want = buf.size();
      if (limit && stall_after > 0) {
        if (forwarded >= stall_after) {
          pace.expires_after(std::chrono::hours(1));  // silent until the proxy stops
          co_await pace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          break;
        }
        want = std::min(want, stall_after - forwarded);
      }
      const std::size_t n = co_await from->async_read_some(
          asio::buffer(buf.data(), want), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      forwarded += n;
      if (limit) downstream += n;
      co_await asio::async_write(*to, asio::buffer(buf.data(), n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      if (limit && rate > 0) {
        pace.expires_after(std::chrono::microseconds(n * 1'000'000 / rate));
        co_await pace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    error_code ignored;
    to->shutdown(tcp::socket::shutdown_send, ignored);
  }

  Task<void> serve(std::shared_ptr<tcp::socket> client) {
    auto server = std::make_shared<tcp::socket>(ioc);
    sockets.push_back(server);
    tcp::resolver resolver(ioc);
    error_code ec;
    auto endpoints = co_await resolver.async_resolve(upstream_host, upstream_port,
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (!ec)
      co_await asio::async_connect(*server, endpoints,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      client->close(ec);
      co_return;
    }
    asio::co_spawn(ioc, pump(client, server, false), asio::detached);
    co_await pump(server, client, true);
  }

  Task<void> accept_loop() {
    for (int i = 0; i < 100'000; ++i) {
      error_code ec;
      auto sock = std::make_shared<tcp::socket>(ioc);
      co_await acceptor.async_accept(*sock, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      sockets.push_back(sock);
      asio::co_spawn(ioc, serve(sock), asio::detached);
    }
  }
};

SlowProxy::SlowProxy(const std::string& upstream, std::size_t bytes_per_second,
                     std::size_t stall_after)
    : impl_(std::make_unique<Impl>()) {
  impl_->stall_after = stall_after;
  const auto colon = upstream.rfind(':');
  impl_->upstream_host = upstream.substr(0, colon);
  impl_->upstream_port = upstream.substr(colon + 1);
  impl_->rate = bytes_per_second;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->address = "127.0.0.1:" + std::to_string(impl_->acceptor.local_endpoint().port());
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

SlowProxy::~SlowProxy() { stop(); }

const std::string& SlowProxy::address() const { return impl_->address; }
std::uint64_t SlowProxy::bytes_forwarded() const { return impl_->downstream.load(); }

void SlowProxy::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->ioc, [this] {
    error_code ec;
    impl_->acceptor.close(ec);
    for (auto& s : impl_->sockets) {
      s->set_option(asio::socket_base::linger(true, 0), ec);
      s->close(ec);
    }
    impl_->ioc.stop();
  });
  impl_->thread.join();
}

}  // namespace layerswarm::test
