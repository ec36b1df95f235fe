#include "common/service.h"

#include <csignal>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/log.h"

namespace layerswarm {
namespace {

Task<void> drain_and_stop(std::function<Task<void>()> drain, asio::io_context* ioc) {
  co_await drain();
  ioc->stop();
}

struct OnSignal {
  asio::signal_set* signals;
  asio::io_context* ioc;
  std::function<Task<void>()> drain;
  std::function<void()> cut;
  long drain_ms;
  bool draining = false;

  void operator()(const boost::system::error_code& ec, int signal) {
    if (ec) return;
    if (draining) {
      LOG_WARN("signal {} again: stopping now", signal);
      cut();
      return;
    }
    LOG_INFO("signal {}: draining (at most {} ms; signal again to stop now)", signal, drain_ms);
    draining = true;
    asio::co_spawn(*ioc, drain_and_stop(drain, ioc), asio::detached);
    signals->async_wait(*this);
  }
};

}  // namespace

void run_until_signalled(asio::io_context& ioc, std::function<Task<void>()> drain,
                         std::function<void()> cut, long drain_ms) {
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait(OnSignal{&signals, &ioc, std::move(drain), std::move(cut), drain_ms});
  ioc.run();
}

}  // namespace layerswarm
