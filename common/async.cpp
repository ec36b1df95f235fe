#include "common/async.h"

namespace layerswarm {
namespace {

// Removes a waiter's timer from the list however its coroutine ends (even when the frame is
// destroyed while suspended, at shutdown).
class WaiterGuard {
 public:
  WaiterGuard(std::list<asio::steady_timer*>& list, asio::steady_timer* timer)
      : list_(list), it_(list.insert(list.end(), timer)) {}
  ~WaiterGuard() { list_.erase(it_); }
  WaiterGuard(const WaiterGuard&) = delete;
  WaiterGuard& operator=(const WaiterGuard&) = delete;

 private:
  std::list<asio::steady_timer*>& list_;
  std::list<asio::steady_timer*>::iterator it_;
};

}  // namespace

Task<bool> Notifier::wait_until(SteadyTime deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  WaiterGuard guard(waiters_, &timer);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return ec == asio::error::operation_aborted;
}

void Notifier::notify_all() {
  for (asio::steady_timer* t : waiters_) t->cancel();
}

Task<void> run_periodically(std::shared_ptr<asio::steady_timer> timer,
                            std::chrono::milliseconds period, std::weak_ptr<bool> alive,
                            std::function<void()> tick) {
  for (;;) {
    timer->expires_after(period);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired() || ec) co_return;
    tick();
  }
}

}  // namespace layerswarm
