#include "common/service.h"

#include <signal.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/log.h"

namespace layerswarm {

void release_free_memory() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    LOG_WARN("cannot read the descriptor limit: {}", std::strerror(errno));
    return;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      LOG_WARN("cannot raise the descriptor limit from {}: {}", before, std::strerror(errno));
      return;
    }
    LOG_INFO("descriptor limit raised from {} to {}", before, limit.rlim_cur);
  } else {
    LOG_DEBUG("descriptor limit {}", limit.rlim_cur);
  }
}

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

namespace {
std::atomic<int> fatal_code{0};
}

void request_fatal_exit(const Error& error) {
  LOG_ERROR("cannot go on: {}; stopping (exit status 2)", error.what());
  fatal_code = 2;
  ::kill(::getpid(), SIGTERM);
}

int fatal_exit_code() { return fatal_code.load(); }

void run_until_signalled(asio::io_context& ioc, std::function<Task<void>()> drain,
                         std::function<void()> cut, long drain_ms) {
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait(OnSignal{&signals, &ioc, std::move(drain), std::move(cut), drain_ms});
  ioc.run();
}

}  // namespace layerswarm
