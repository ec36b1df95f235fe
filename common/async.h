// Coroutine building blocks on Boost.Asio 1.74 (STYLE.md 10, 11, 13).
//
// Threading: the agent runs one io_context on one thread. Notifier and SingleFlight are used
// only from that thread (no locks). offload() moves blocking work to a thread pool and
// resumes the caller on its own executor.
#pragma once

#include <utility>  // before asio/awaitable.hpp with Boost 1.74 (LIBS.md)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "common/result.h"

namespace layerswarm {

namespace asio = boost::asio;
template <class T>
using Task = asio::awaitable<T>;
using SteadyTime = std::chrono::steady_clock::time_point;

inline SteadyTime deadline_after(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

// A broadcast wake-up for coroutines on one thread. A waiter checks its condition, then
// calls wait_until(); notify_all() wakes every current waiter. Waiters must re-check their
// condition after waking (a wake-up is a hint, not a promise).
class Notifier {
 public:
  Notifier() = default;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Returns true when woken by notify_all(), false when `deadline` passed first.
  Task<bool> wait_until(SteadyTime deadline);
  void notify_all();
  std::size_t waiters() const { return waiters_.size(); }

 private:
  std::list<asio::steady_timer*> waiters_;
};

// Runs `fn()` (blocking, must not throw) on `pool`, and resumes the awaiting coroutine on its
// own executor with the result.
template <class F>
struct OffloadInitiation {
  asio::thread_pool* pool;
  F fn;

  template <class Handler>
  void operator()(Handler&& handler) {
    auto ex = asio::get_associated_executor(handler);
    auto work = asio::make_work_guard(ex);
    asio::post(*pool, [h = std::forward<Handler>(handler), fn = std::move(fn), ex,
                       work = std::move(work)]() mutable {
      auto result = fn();
      asio::post(
          ex, [h = std::move(h), result = std::move(result)]() mutable { h(std::move(result)); });
    });
  }
};

template <class F>
Task<std::invoke_result_t<F>> offload(asio::thread_pool& pool, F fn) {
  using R = std::invoke_result_t<F>;
  OffloadInitiation<F> init{&pool, std::move(fn)};
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      std::move(init), asio::use_awaitable);
}

// Collapses concurrent calls with the same key into one execution. T must be constructible
// from an Error (a Result<...>), which is what followers get when the leader throws.
template <class T>
class SingleFlight {
 public:
  // When no call for `key` is in flight, awaits `task` and hands its result to every caller
  // that joined meanwhile. Otherwise `task` is dropped unstarted and the caller waits for the
  // running one (at most `max_wait`).
  Task<T> run(std::string key, Task<T> task,
              std::chrono::milliseconds max_wait = std::chrono::minutes(10)) {
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      std::shared_ptr<Flight> flight = it->second;
      const SteadyTime deadline = deadline_after(max_wait);
      while (!flight->result) {
        const bool woken = co_await flight->done.wait_until(deadline);
        if (!woken && std::chrono::steady_clock::now() >= deadline && !flight->result) {
          co_return T(Error(Errc::kTimeout, "waited too long for a shared fetch"));
        }
      }
      co_return *flight->result;
    }
    auto flight = std::make_shared<Flight>();
    flights_.emplace(key, flight);
    std::optional<T> result;
    try {
      T value = co_await std::move(task);
      result.emplace(std::move(value));
    } catch (const std::exception& e) {
      result.emplace(Error(Errc::kInternal, e.what()));
    }
    flights_.erase(key);
    flight->result = *result;
    flight->done.notify_all();
    co_return std::move(*result);
  }

  bool in_flight(const std::string& key) const { return flights_.count(key) > 0; }

 private:
  struct Flight {
    std::optional<T> result;
    Notifier done;
  };
  std::map<std::string, std::shared_ptr<Flight>> flights_;
};

// Runs `tick()` every `period` until `alive` expires or `timer` is cancelled (its owner's
// destructor cancels it). `tick` is a plain function, run on the timer's executor.
Task<void> run_periodically(std::shared_ptr<asio::steady_timer> timer,
                            std::chrono::milliseconds period, std::weak_ptr<bool> alive,
                            std::function<void()> tick);

}  // namespace layerswarm
