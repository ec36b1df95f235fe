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

// A descriptor of a blob file shared by all the chunk torrents of that blob: one open file per
// blob, not one per chunk (a 50 GiB cache in 4 MiB chunks would otherwise need ~12,800).
// Closed when the last torrent using it is gone.
class SharedFile {
 public:
  // Duplicates `fd` (close-on-exec). Errors: kStorage.
  static Result<std::shared_ptr<SharedFile>> dup(int fd);
  ~SharedFile();
  SharedFile(const SharedFile&) = delete;
  SharedFile& operator=(const SharedFile&) = delete;
  int fd() const { return fd_; }

 private:
  explicit SharedFile(int fd) : fd_(fd) {}
  int fd_;
};

// A chunk torrent's expected hashes, from its metainfo: `v1`, 20 bytes per piece (SHA-1), and
// `layer`, 32 bytes per piece (the v2 piece layer: each piece's SHA-256 merkle root). With both,
// a piece is checked against its merkle root alone and its SHA-1 is not computed
// (docs/architecture.md "One hash per piece"). Empty: both hashes are computed.
struct PieceHashes {
  std::string v1;
  std::string layer;
};

struct Registered {
  std::string save_path;
  std::shared_ptr<WriteGate> gate;
};

// Registers `file` and returns the save_path that maps a torrent onto its bytes from `offset`
// on, and the gate of its writes. The storage keeps `file` until the torrent is removed;
// release_fd() drops the registration of a torrent that was never added.
Registered register_file(std::shared_ptr<SharedFile> file, std::uint64_t offset,
                         PieceHashes hashes = {});
void release_fd(const std::string& save_path);

// Pieces this process checked against their merkle root without computing their SHA-1, and
// pieces whose SHA-1 it computed (tests and measurements).
std::uint64_t pieces_checked_by_root();
std::uint64_t pieces_checked_by_sha1();

}  // namespace layerswarm::p2p
