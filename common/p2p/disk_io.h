// libtorrent storage for layerswarm's chunk torrents: each torrent is one file of `length`
// bytes that lives at `offset` inside a blob file (the download's temporary file, or the
// cached blob). A blob therefore stays one file, served with sendfile and seeded in place.
//
// A torrent names its range through its save_path: "lsfd:<offset>:<handle>", where <handle>
// is a file descriptor registered with register_fd() (a dup the storage takes over). The
// registration happens on our side before the torrent is added, so no fd number is ever
// reused under libtorrent's feet.
//
// Only this module's .cpp files include libtorrent (STYLE.md 2).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"

namespace layerswarm::p2p {

// Closes a torrent's storage to writes, synchronously: once revoke() returns, nothing more
// is written through it, even while libtorrent is still tearing the torrent down. Used before
// the download's file is written by anyone else (the fetcher resuming over HTTP).
class WriteGate {
 public:
  void revoke();
  // Runs `write` unless revoked; false when revoked.
  template <class F>
  bool run(F&& write) {
    std::lock_guard lock(mu_);
    if (revoked_) return false;
    write();
    return true;
  }

 private:
  std::mutex mu_;
  bool revoked_ = false;
};

struct Registered {
  std::string save_path;
  std::shared_ptr<WriteGate> gate;
};

// Registers a duplicate of `fd` and returns the save_path that maps a torrent onto bytes from
// `offset` on, and the gate of its writes. The duplicate is closed when a storage took it
// over and was removed, or by release_fd() when the torrent was never added.
// Errors: kStorage (dup failed).
Result<Registered> register_fd(int fd, std::uint64_t offset);
void release_fd(const std::string& save_path);

// Testing only (tests/integration, the "bad peer" case): every block this process uploads
// has its first byte flipped, while its own hash checks still read true bytes. Process-wide.
void corrupt_uploads_for_testing(bool on);

}  // namespace layerswarm::p2p
