// Running a service binary until it is told to stop: the first SIGTERM/SIGINT drains, a second
// cuts the drain short. The drain is what stops the io_context, so no coroutine is left
// waiting on an object destroyed before it. Also ignores SIGPIPE (sendfile to a closed socket).
#pragma once

#include <functional>

#include "common/async.h"
#include "common/error.h"

namespace boost::asio {
class io_context;
}

namespace layerswarm {

// Raises the soft RLIMIT_NOFILE to the hard limit (systemd's default soft limit is 1024) and
// logs the result. Call once at start.
void raise_descriptor_limit();

// Hands the pages of freed heap memory back to the system. glibc keeps them for reuse: an agent
// that had 12,850 chunk torrents loaded stayed at 97 MiB RSS once they were all unloaded, and
// fell to 40 MiB after this (docs/benchmarks.md "A cache of 12,800 chunks"). For after a large
// release (torrents unloaded), not for a hot path: it walks the whole heap.
void release_free_memory();

// A running service found its configuration unusable (a pin set larger than the disk budget):
// logs `error`, drains like SIGTERM, and makes fatal_exit_code() 2. Any thread.
void request_fatal_exit(const Error& error);
// 0, or 2 after request_fatal_exit(): what main returns once the service stopped.
int fatal_exit_code();

// Runs `ioc` until a signal arrives and `drain()` has completed. `drain_ms` is only logged.
void run_until_signalled(asio::io_context& ioc, std::function<Task<void>()> drain,
                         std::function<void()> cut, long drain_ms);

}  // namespace layerswarm
