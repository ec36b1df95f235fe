#include "common/p2p/disk_io.h"

#include <fcntl.h>
#include <unistd.h>
#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/aux_/vector.hpp>
#include <libtorrent/disk_buffer_holder.hpp>
#include <libtorrent/disk_interface.hpp>
#include <libtorrent/file_storage.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/io_context.hpp>
#include <libtorrent/performance_counters.hpp>
#include <libtorrent/storage_defs.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/p2p/disk_io_lt.h"

namespace layerswarm::p2p {
namespace {

#ifdef LAYERSWARM_TEST_HOOKS
// Test builds only (tests/tools: layerswarm-agent-corrupt, for the "bad peer" integration
// test): every block this process uploads has its first byte flipped, while its own hash checks
// read true bytes. The shipped binaries are compiled without it.
bool corrupt_uploads() {
  static const bool on = [] {
    const char* v = std::getenv("LAYERSWARM_TESTING_CORRUPT_UPLOADS");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}
#endif

constexpr int kBlock = lt::default_block_size;  // 16 KiB

struct Pending {
  std::shared_ptr<SharedFile> file;
  std::shared_ptr<WriteGate> gate;
  PieceHashes hashes;
};

std::atomic<std::uint64_t> g_by_root{0};
std::atomic<std::uint64_t> g_by_sha1{0};

// The SHA-256 merkle root of a piece's block hashes, padded with zero leaves to `leaves` (a
// power of two): BEP 52's piece layer entry for that piece.
lt::sha256_hash piece_root(lt::span<const lt::sha256_hash> blocks, int leaves) {
  std::vector<lt::sha256_hash> layer(blocks.begin(), blocks.end());
  layer.resize(static_cast<std::size_t>(std::max(leaves, 1)));  // zero hashes
  for (int i = 0; i < 32 && layer.size() > 1; ++i) {
    for (std::size_t j = 0; j < layer.size() / 2; ++j) {
      lt::hasher256 h;
      h.update(layer[2 * j]);
      h.update(layer[2 * j + 1]);
      layer[j] = h.final();
    }
    layer.resize(layer.size() / 2);
  }
  return layer.front();
}

// Duplicated descriptors waiting for their storage, by handle.
std::mutex g_mu;
std::map<std::uint64_t, Pending> g_fds;
std::atomic<std::uint64_t> g_next{1};

struct Parsed {
  std::uint64_t offset = 0;
  std::uint64_t handle = 0;
};

std::optional<Parsed> parse(const std::string& path) {
  // libtorrent makes save paths absolute ("/cwd/lsfd:..."): the marker is the last component.
  constexpr std::string_view kPrefix = "lsfd:";
  std::string_view s(path);
  const auto at = s.rfind(kPrefix);
  if (at == std::string_view::npos || (at > 0 && s[at - 1] != '/')) return std::nullopt;
  s.remove_prefix(at + kPrefix.size());
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  Parsed p;
  const auto a = std::from_chars(s.data(), s.data() + colon, p.offset);
  const auto b = std::from_chars(s.data() + colon + 1, s.data() + s.size(), p.handle);
  if (a.ec != std::errc() || b.ec != std::errc()) return std::nullopt;
  return p;
}

Pending take_fd(std::uint64_t handle) {
  std::lock_guard lock(g_mu);
  auto it = g_fds.find(handle);
  if (it == g_fds.end()) return {};
  Pending p = std::move(it->second);
  g_fds.erase(it);
  return p;
}

// One torrent's bytes: [base, base + length) of an open file.
struct Range {
  std::shared_ptr<SharedFile> file;
  int fd = -1;  // file's
  std::shared_ptr<WriteGate> gate;
  std::uint64_t base = 0;
  std::int64_t length = 0;
  int piece_length = 0;
  PieceHashes hashes;  // empty unless both are complete (checked in new_torrent)

  int piece_size(lt::piece_index_t piece) const {
    const std::int64_t start = std::int64_t(static_cast<int>(piece)) * piece_length;
    return static_cast<int>(std::min<std::int64_t>(piece_length, length - start));
  }
  std::int64_t position(lt::piece_index_t piece, int offset) const {
    return std::int64_t(base) + std::int64_t(static_cast<int>(piece)) * piece_length + offset;
  }
  // How many of `length` bytes at (piece, offset) are the chunk's own: libtorrent moves the
  // last piece's blocks whole, padding included, and the padding (zeros) is not in the file.
  std::size_t own(lt::piece_index_t piece, int offset, int size) const {
    const std::int64_t start = std::int64_t(static_cast<int>(piece)) * piece_length + offset;
    return static_cast<std::size_t>(std::clamp<std::int64_t>(length - start, 0, size));
  }
};

lt::storage_error io_error(lt::operation_t op) {
  lt::storage_error e;
  e.ec = lt::error_code(errno ? errno : EIO, lt::system_category());
  e.operation = op;
  return e;
}

// Reads exactly `size` bytes or fails.
bool read_exact(int fd, char* buf, std::size_t size, std::int64_t pos) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, buf, size, pos);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    buf += n;
    size -= static_cast<std::size_t>(n);
    pos += n;
  }
  return true;
}

class RangeDiskIo final : public lt::disk_interface, public lt::buffer_allocator_interface {
 public:
  explicit RangeDiskIo(lt::io_context& ios) : ios_(ios) {}

  lt::storage_holder new_torrent(lt::storage_params const& p,
                                 std::shared_ptr<void> const&) override {
    auto range = std::make_unique<Range>();
    if (auto parsed = parse(p.path)) {
      Pending pending = take_fd(parsed->handle);
      range->file = std::move(pending.file);
      range->fd = range->file ? range->file->fd() : -1;
      range->gate = std::move(pending.gate);
      range->base = parsed->offset;
      range->hashes = std::move(pending.hashes);
    }
    // The chunk file's own length: libtorrent pads a v2 file up to a whole last piece, and
    // the padding is never read or written.
    range->length = p.files.num_files() > 0 ? p.files.file_size(lt::file_index_t(0)) : 0;
    range->piece_length = p.files.piece_length();
    const auto pieces = static_cast<std::size_t>(p.files.num_pieces());
    if (range->hashes.v1.size() != pieces * lt::sha1_hash::size() ||
        range->hashes.layer.size() != pieces * lt::sha256_hash::size() ||
        range->piece_length % kBlock != 0) {
      range->hashes = PieceHashes{};
    }
    lt::storage_index_t idx;
    if (free_.empty()) {
      idx = ranges_.end_index();
      ranges_.emplace_back(std::move(range));
    } else {
      idx = free_.back();
      free_.pop_back();
      ranges_[idx] = std::move(range);
    }
    return lt::storage_holder(idx, *this);
  }

  void remove_torrent(lt::storage_index_t idx) override {
    ranges_[idx].reset();
    free_.push_back(idx);
  }

  void async_read(lt::storage_index_t storage, lt::peer_request const& r,
                  std::function<void(lt::disk_buffer_holder, lt::storage_error const&)> handler,
                  lt::disk_job_flags_t) override {
    const Range& range = *ranges_[storage];
    char* buf = new char[static_cast<std::size_t>(r.length)];
    const std::size_t own = range.own(r.piece, r.start, r.length);
    std::memset(buf + own, 0, static_cast<std::size_t>(r.length) - own);
    lt::storage_error error;
    if (!read_exact(range.fd, buf, own, range.position(r.piece, r.start))) {
      error = io_error(lt::operation_t::file_read);
    }
#ifdef LAYERSWARM_TEST_HOOKS
    else if (corrupt_uploads() && r.length > 0) {
      buf[0] = static_cast<char>(buf[0] ^ 0x5a);
    }
#endif
    lt::disk_buffer_holder holder(*this, buf, r.length);
    boost::asio::post(ios_, [h = std::move(handler), b = std::move(holder), error]() mutable {
      h(std::move(b), error);
    });
  }

  bool async_write(lt::storage_index_t storage, lt::peer_request const& r, char const* buf,
                   std::shared_ptr<lt::disk_observer>,
                   std::function<void(lt::storage_error const&)> handler,
                   lt::disk_job_flags_t) override {
    const Range& range = *ranges_[storage];
    lt::storage_error error;
    auto write = [&] {
      std::size_t left = range.own(r.piece, r.start, r.length);
      std::int64_t pos = range.position(r.piece, r.start);
      while (left > 0) {
        const ssize_t n = ::pwrite(range.fd, buf, left, pos);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          error = io_error(lt::operation_t::file_write);
          break;
        }
        buf += n;
        left -= static_cast<std::size_t>(n);
        pos += n;
      }
    };
    if (range.fd < 0 || !range.gate || !range.gate->run(write)) {
      error.ec = lt::error_code(EBADF, lt::system_category());
      error.operation = lt::operation_t::file_write;
    }
    boost::asio::post(ios_, [h = std::move(handler), error] { h(error); });
    return false;  // never congested: the write is done
  }

  void async_hash(
      lt::storage_index_t storage, lt::piece_index_t piece, lt::span<lt::sha256_hash> block_hashes,
      lt::disk_job_flags_t flags,
      std::function<void(lt::piece_index_t, lt::sha1_hash const&, lt::storage_error const&)>
          handler) override {
    const Range& range = *ranges_[storage];
    bool v1 = bool(flags & lt::disk_interface::v1_hash);
    const int size = range.piece_size(piece);
    const int blocks = (size + kBlock - 1) / kBlock;
    // One hash per byte instead of two: with the piece layer at hand, the blocks' SHA-256
    // merkle root is checked here, and the answer to libtorrent's SHA-1 question is the
    // expected hash when the root matches, a zero hash when it does not. libtorrent checks the
    // block hashes against the same root itself, so both of its verdicts agree.
    const bool by_root = v1 && !range.hashes.layer.empty() && int(block_hashes.size()) >= blocks;
    if (by_root) v1 = false;
    lt::hasher sha1;
    lt::storage_error error;
    char buf[kBlock];
    for (int offset = 0, i = 0; offset < size; offset += kBlock, ++i) {
      const int len = std::min(kBlock, size - offset);
      if (!read_exact(range.fd, buf, static_cast<std::size_t>(len),
                      range.position(piece, offset))) {
        error = io_error(lt::operation_t::file_read);
        break;
      }
      if (v1) sha1.update(buf, len);
      if (i < int(block_hashes.size())) block_hashes[i] = lt::hasher256(buf, len).final();
    }
    lt::sha1_hash h1 = v1 ? sha1.final() : lt::sha1_hash();
    if (by_root && !error) {
      const auto at = static_cast<std::size_t>(static_cast<int>(piece));
      const lt::sha256_hash expected(range.hashes.layer.data() + at * lt::sha256_hash::size());
      const lt::sha256_hash root =
          piece_root(block_hashes.first(blocks), range.piece_length / kBlock);
      if (root == expected) h1 = lt::sha1_hash(range.hashes.v1.data() + at * lt::sha1_hash::size());
      ++g_by_root;
    } else if (v1) {
      ++g_by_sha1;
    }
    boost::asio::post(ios_, [h = std::move(handler), piece, h1, error] { h(piece, h1, error); });
  }

  void async_hash2(
      lt::storage_index_t storage, lt::piece_index_t piece, int offset, lt::disk_job_flags_t,
      std::function<void(lt::piece_index_t, lt::sha256_hash const&, lt::storage_error const&)>
          handler) override {
    const Range& range = *ranges_[storage];
    const int len = std::min(kBlock, range.piece_size(piece) - offset);
    char buf[kBlock];
    lt::storage_error error;
    lt::sha256_hash hash;
    if (len <= 0 ||
        !read_exact(range.fd, buf, static_cast<std::size_t>(len), range.position(piece, offset))) {
      error = io_error(lt::operation_t::file_read);
    } else {
      hash = lt::hasher256(buf, len).final();
    }
    boost::asio::post(ios_,
                      [h = std::move(handler), piece, hash, error] { h(piece, hash, error); });
  }

  // Our files are the cache's: libtorrent never moves, renames or deletes them.
  void async_move_storage(
      lt::storage_index_t, std::string p, lt::move_flags_t,
      std::function<void(lt::status_t, std::string const&, lt::storage_error const&)> handler)
      override {
    boost::asio::post(
        ios_, [h = std::move(handler), p] { h(lt::status_t::no_error, p, lt::storage_error()); });
  }
  void async_release_files(lt::storage_index_t, std::function<void()> handler) override {
    if (handler) boost::asio::post(ios_, std::move(handler));
  }
  void async_check_files(
      lt::storage_index_t, lt::add_torrent_params const*,
      lt::aux::vector<std::string, lt::file_index_t>,
      std::function<void(lt::status_t, lt::storage_error const&)> handler) override {
    // A download starts empty; a seed is added in seed mode (checked lazily on upload).
    boost::asio::post(ios_,
                      [h = std::move(handler)] { h(lt::status_t::no_error, lt::storage_error()); });
  }
  void async_stop_torrent(lt::storage_index_t, std::function<void()> handler) override {
    if (handler) boost::asio::post(ios_, std::move(handler));
  }
  void async_rename_file(
      lt::storage_index_t, lt::file_index_t index, std::string name,
      std::function<void(std::string const&, lt::file_index_t, lt::storage_error const&)> handler)
      override {
    boost::asio::post(ios_, [h = std::move(handler), index, n = std::move(name)] {
      h(n, index, lt::storage_error());
    });
  }
  void async_delete_files(lt::storage_index_t, lt::remove_flags_t,
                          std::function<void(lt::storage_error const&)> handler) override {
    boost::asio::post(ios_, [h = std::move(handler)] { h(lt::storage_error()); });
  }
  void async_set_file_priority(
      lt::storage_index_t, lt::aux::vector<lt::download_priority_t, lt::file_index_t> prio,
      std::function<void(lt::storage_error const&,
                         lt::aux::vector<lt::download_priority_t, lt::file_index_t>)>
          handler) override {
    boost::asio::post(ios_, [h = std::move(handler), p = std::move(prio)]() mutable {
      h(lt::storage_error(), std::move(p));
    });
  }
  void async_clear_piece(lt::storage_index_t, lt::piece_index_t index,
                         std::function<void(lt::piece_index_t)> handler) override {
    boost::asio::post(ios_, [h = std::move(handler), index] { h(index); });
  }

  void update_stats_counters(lt::counters&) const override {}
  std::vector<lt::open_file_state> get_status(lt::storage_index_t) const override { return {}; }
  void abort(bool) override {}
  void submit_jobs() override {}
  void settings_updated() override {}

  void free_disk_buffer(char* b) override { delete[] b; }

 private:
  lt::io_context& ios_;
  lt::aux::vector<std::unique_ptr<Range>, lt::storage_index_t> ranges_;
  std::vector<lt::storage_index_t> free_;
};

}  // namespace

void WriteGate::revoke() {
  std::lock_guard lock(mu_);
  revoked_ = true;
}

Result<std::shared_ptr<SharedFile>> SharedFile::dup(int fd) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return Error(Errc::kStorage,
                 std::string("cannot duplicate a blob file descriptor: ") + std::strerror(errno));
  }
  return std::shared_ptr<SharedFile>(new SharedFile(copy));
}

SharedFile::~SharedFile() {
  if (fd_ >= 0) ::close(fd_);
}

Registered register_file(std::shared_ptr<SharedFile> file, std::uint64_t offset,
                         PieceHashes hashes) {
  const std::uint64_t handle = g_next++;
  auto gate = std::make_shared<WriteGate>();
  {
    std::lock_guard lock(g_mu);
    g_fds[handle] = Pending{std::move(file), gate, std::move(hashes)};
  }
  return Registered{"lsfd:" + std::to_string(offset) + ":" + std::to_string(handle),
                    std::move(gate)};
}

void release_fd(const std::string& save_path) {
  if (auto parsed = parse(save_path)) take_fd(parsed->handle);
}

std::uint64_t pieces_checked_by_root() { return g_by_root.load(); }
std::uint64_t pieces_checked_by_sha1() { return g_by_sha1.load(); }

std::unique_ptr<lt::disk_interface> range_disk_io_constructor(lt::io_context& ios,
                                                              lt::settings_interface const&,
                                                              lt::counters&) {
  return std::make_unique<RangeDiskIo>(ios);
}

}  // namespace layerswarm::p2p
