#include "common/p2p/swarm.h"

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/ip_filter.hpp>
#include <libtorrent/peer_info.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/session_stats.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "common/metrics.h"
#include "common/p2p/disk_io.h"
#include "common/p2p/disk_io_lt.h"
#include "common/p2p/first_seed.h"
#include "common/p2p/one_copy.h"

namespace layerswarm::p2p {
namespace {

// libtorrent's listen_interfaces: "ip:port", with an "s" suffix for a TLS listener.
std::string listen_spec(const std::string& listen, bool tls) { return tls ? listen + "s" : listen; }

lt::settings_pack base_settings(const SwarmOptions& o) {
  // libtorrent's high-throughput preset: measured on a 4-node rollout, 29.6 s -> 21.0 s.
  lt::settings_pack s = lt::high_performance_seed();
  s.set_str(lt::settings_pack::listen_interfaces, listen_spec(o.listen, o.identity.has_value()));
  s.set_bool(lt::settings_pack::enable_outgoing_utp, false);  // uTP caps loopback at ~15 MB/s
  s.set_bool(lt::settings_pack::enable_incoming_utp, false);
  s.set_bool(lt::settings_pack::enable_dht, false);  // a closed swarm: the tracker only
  s.set_bool(lt::settings_pack::enable_lsd, false);
  s.set_bool(lt::settings_pack::enable_upnp, false);
  s.set_bool(lt::settings_pack::enable_natpmp, false);
  s.set_int(lt::settings_pack::tick_interval, 100);  // first piece ~0.13 s instead of ~0.5 s
  // libtorrent picks a torrent's first pieces at random (4 by default) whatever their priority:
  // a client's first byte could come last of its chunk (docs/benchmarks.md "First byte: the blob's
  // first piece comes first"). Among equally rare pieces, rarest-first is random anyway.
  s.set_int(lt::settings_pack::initial_picker_threshold, 0);
  s.set_int(lt::settings_pack::out_enc_policy, lt::settings_pack::pe_disabled);  // no RC4
  s.set_int(lt::settings_pack::in_enc_policy, lt::settings_pack::pe_disabled);
  s.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
  s.set_int(lt::settings_pack::upload_rate_limit, o.upload_rate_limit);
  s.set_int(lt::settings_pack::download_rate_limit, o.download_rate_limit);
  s.set_bool(lt::settings_pack::smooth_connects, false);
  s.set_int(lt::settings_pack::connection_speed, 200);
  s.set_int(lt::settings_pack::min_reconnect_time, 1);
  s.set_int(lt::settings_pack::peer_connect_timeout, 3);
  s.set_int(lt::settings_pack::min_announce_interval, kMinAnnounceIntervalSeconds);
#ifdef LAYERSWARM_TEST_HOOKS
  // Test builds only (tests/CMakeLists.txt: layerswarm-agent-testhooks): no once-a-second
  // dial rounds and no second announce within the hour, so a torrent dials on its tracker's
  // first reply or never. The test "a download dials the first seed on the tracker's first
  // reply" shows that the named peers are in its peer list by then.
  if (const char* v = std::getenv("LAYERSWARM_TESTING_NO_DIAL_ROUNDS"); v && v[0] == '1') {
    s.set_int(lt::settings_pack::connection_speed, 0);
    s.set_int(lt::settings_pack::min_announce_interval, 3600);
  }
#endif
  // Seeds dial nobody: every node of a site accepts peer connections and a downloading peer
  // dials the seeds the tracker names. A seed dialling another seed is closed at once as
  // redundant ("upload to upload") and dialled again every min_reconnect_time: at N = 10 each
  // idle agent made ~170 such connections a second, ~7% of a core per node, for as long as its
  // chunks stayed loaded (docs/benchmarks.md "Seeds dial nobody").
  s.set_bool(lt::settings_pack::seeding_outgoing_connections, false);
  // Upload slots for all of a node's chunk torrents together (libtorrent's default is 8). 0 in
  // the options: every interested peer gets one (the first seed). A large number rather than
  // -1, which turns off libtorrent's immediate unchoke of a newly interested peer. An agent caps
  // them: many slow flows cost more CPU per byte than a few fast ones (docs/benchmarks.md
  // "Upload slots and 256 KiB pieces").
  s.set_int(lt::settings_pack::unchoke_slots_limit, o.upload_slots > 0 ? o.upload_slots : 100'000);
  s.set_int(lt::settings_pack::unchoke_interval, 5);
  s.set_int(lt::settings_pack::connections_limit, o.connections_limit);
  s.set_int(lt::settings_pack::max_concurrent_http_announces, o.http_announces);
  // Peers asked of the tracker per announce: as many as a torrent connects to (below).
  s.set_int(lt::settings_pack::num_want, o.peers_per_torrent);
  s.set_str(lt::settings_pack::peer_fingerprint, "-LS0100-");
  s.set_str(lt::settings_pack::user_agent, "layerswarm/0.1.0");
  // The alerts on_alert() acts on. Connections and tracker replies are only logged, at debug
  // level, so only then asked for: at thousands of chunk torrents they were most of the alerts
  // and their queue's memory (docs/benchmarks.md "The torrent cap counts downloads").
  lt::alert_category_t mask = lt::alert_category::error | lt::alert_category::status |
                              lt::alert_category::piece_progress | lt::alert_category::peer;
  if (::spdlog::should_log(::spdlog::level::debug)) {
    mask |= lt::alert_category::connect | lt::alert_category::tracker;
  }
  s.set_int(lt::settings_pack::alert_mask, mask);
  s.set_int(lt::settings_pack::alert_queue_size, 100'000);
  return s;
}

// The torrent's v1 hashes and the one file's v2 piece layer, copied before libtorrent takes
// (and frees) the layer. A torrent of one piece has no layer (its file's merkle root covers
// its blocks padded to a power of two, not to a piece): both hashes are computed for it.
PieceHashes piece_hashes(const lt::torrent_info& ti) {
  PieceHashes h;
  if (ti.num_pieces() < 2 || !ti.info_hashes().has_v1()) return h;
  const lt::span<char const> layer = ti.piece_layer(lt::file_index_t(0));
  if (layer.empty()) return h;
  h.layer.assign(layer.begin(), layer.end());
  for (lt::piece_index_t p(0); p < lt::piece_index_t(ti.num_pieces()); ++p) {
    const lt::sha1_hash v1 = ti.hash_for_piece(p);
    h.v1.append(v1.data(), v1.size());
  }
  return h;
}

}  // namespace

struct Swarm::Impl {
  struct Entry {
    TorrentId id;
    TorrentObserver* observer;
    std::shared_ptr<WriteGate> gate;
    // Priorities asked for before libtorrent checked the torrent wait here.
    bool checked = false;
    std::optional<std::pair<int, int>> pending_priorities;
  };

  asio::any_io_executor executor;
  std::unique_ptr<lt::session> session;
  std::string listen;
  std::optional<Identity> identity;
  int peers_per_torrent = kDefaultPeersPerTorrent;
  // libtorrent's "peer.num_peers_connected" counter (session_stats_alert), for the metrics.
  int peers_metric = lt::find_metric_idx("peer.num_peers_connected");
  // Its byte counters (totals since the session started), in SwarmStats' order.
  std::array<int, 4> byte_metrics{lt::find_metric_idx("net.recv_payload_bytes"),
                                  lt::find_metric_idx("net.sent_payload_bytes"),
                                  lt::find_metric_idx("net.recv_redundant_bytes"),
                                  lt::find_metric_idx("net.recv_failed_bytes")};
  SwarmStats last;  // the last counters received (peers and bytes)
  std::unordered_map<TorrentId, lt::torrent_handle> by_id;
  std::unordered_map<lt::torrent_handle, Entry> by_handle;
  TorrentId next_id = 1;
  // Torrents removed but not yet gone from libtorrent: adding one again before its
  // torrent_removed_alert would hand back the dying handle.
  std::unordered_set<lt::info_hash_t> removing;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  std::shared_ptr<FirstSeedLedger> ledger = std::make_shared<FirstSeedLedger>();
  std::chrono::milliseconds first_seed_hold{0};
  std::chrono::milliseconds one_copy_quiet{0};
  std::shared_ptr<OneCopyStats> one_copy = std::make_shared<OneCopyStats>();

  void drain();
  void take_counters(const lt::session_stats_alert& stats);
  void on_alert(lt::alert* a);
  std::uint16_t bound_port() const {
    return identity ? session->ssl_listen_port() : session->listen_port();
  }
  static void set_priorities(const lt::torrent_handle& handle, int first, int count);
  // A torrent's payload counter (0 for an unknown torrent): one status call into libtorrent.
  std::uint64_t payload(TorrentId id, std::int64_t lt::torrent_status::*field) const;
};

void Swarm::Impl::take_counters(const lt::session_stats_alert& stats) {
  const auto values = stats.counters();
  const auto at = [&](int index) -> std::uint64_t {
    return index < 0 ? 0 : static_cast<std::uint64_t>(std::max<std::int64_t>(0, values[index]));
  };
  last.peers = at(peers_metric);
  last.payload_received = at(byte_metrics[0]);
  last.payload_sent = at(byte_metrics[1]);
  last.redundant_received = at(byte_metrics[2]);
  last.failed_received = at(byte_metrics[3]);
}

void Swarm::Impl::drain() {
  std::vector<lt::alert*> alerts;
  session->pop_alerts(&alerts);
  for (lt::alert* a : alerts) on_alert(a);
}

void Swarm::Impl::on_alert(lt::alert* a) {
  if (auto* stats = lt::alert_cast<lt::session_stats_alert>(a)) {
    take_counters(*stats);
    return;
  }
  if (auto* r = lt::alert_cast<lt::torrent_removed_alert>(a)) {
    removing.erase(r->info_hashes);
  } else if (auto* c = lt::alert_cast<lt::torrent_checked_alert>(a)) {
    auto it = by_handle.find(c->handle);
    if (it != by_handle.end() && !it->second.checked) {
      it->second.checked = true;
      if (auto d = it->second.pending_priorities) set_priorities(c->handle, d->first, d->second);
      it->second.pending_priorities.reset();
    }
  } else if (auto* p = lt::alert_cast<lt::piece_finished_alert>(a)) {
    auto it = by_handle.find(p->handle);
    if (it != by_handle.end() && it->second.observer) {
      it->second.observer->on_piece(static_cast<int>(p->piece_index));
    }
  } else if (auto* e = lt::alert_cast<lt::torrent_error_alert>(a)) {
    auto it = by_handle.find(e->handle);
    if (it == by_handle.end()) {
      // A removed torrent: its file's write gate was revoked (remove()), so libtorrent's late
      // writes fail with EBADF by design. Nothing is wrong.
      LOG_DEBUG("swarm: removed torrent: {}", e->message());
      return;
    }
    LOG_WARN("swarm: torrent error: {}", e->message());
    if (it->second.observer) it->second.observer->on_failed(e->message());
  } else if (auto* h = lt::alert_cast<lt::hash_failed_alert>(a)) {
    LOG_WARN("swarm: piece {} failed its hash check; its senders are suspects",
             static_cast<int>(h->piece_index));
  } else if (auto* b = lt::alert_cast<lt::peer_ban_alert>(a)) {
    LOG_WARN("swarm: banned peer {}", b->message());
  } else if (auto* l = lt::alert_cast<lt::listen_failed_alert>(a)) {
    LOG_ERROR("swarm: {}", l->message());
  } else if (auto* t = lt::alert_cast<lt::tracker_error_alert>(a)) {
    LOG_DEBUG("swarm: {}", t->message());
  } else if (lt::alert_cast<lt::peer_connect_alert>(a) ||
             lt::alert_cast<lt::peer_disconnected_alert>(a) ||
             lt::alert_cast<lt::tracker_reply_alert>(a)) {
    LOG_DEBUG("swarm: {}", a->message());
  }
}

Swarm::Swarm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Swarm::~Swarm() {
  *impl_->alive = false;
  impl_->session->set_alert_notify([] {});
  // The session's byte totals, fresh, for the exit line (a rollout's redundant share).
  impl_->session->post_session_stats();
  for (int i = 0; i < 20 && impl_->session->wait_for_alert(lt::milliseconds(50)); ++i) {
    std::vector<lt::alert*> alerts;
    impl_->session->pop_alerts(&alerts);
    const auto it = std::find_if(alerts.begin(), alerts.end(), [](lt::alert* a) {
      return lt::alert_cast<lt::session_stats_alert>(a) != nullptr;
    });
    if (it == alerts.end()) continue;
    impl_->take_counters(*lt::alert_cast<lt::session_stats_alert>(*it));
    break;
  }
  if (const std::uint64_t held = impl_->one_copy->held.load(); held > 0) {
    LOG_INFO(
        "swarm: held back {} requests for blocks in flight elsewhere, sent {} of them later, "
        "cancelled {}",
        held, impl_->one_copy->released.load(), impl_->one_copy->cancelled.load());
  }
  const SwarmStats& t = impl_->last;
  LOG_INFO("swarm: payload received {} bytes ({} redundant, {} failed a hash check), sent {} bytes",
           t.payload_received, t.redundant_received, t.failed_received, t.payload_sent);
  impl_->session.reset();  // aborts the session and waits for its thread
  LOG_INFO("swarm: pieces checked: {} against their merkle root alone, {} with SHA-1 too",
           pieces_checked_by_root(), pieces_checked_by_sha1());
  if (const std::uint64_t refused = impl_->ledger->refused.load(); refused > 0) {
    LOG_INFO("swarm: the first seed refused {} requests for pieces it had given another peer",
             refused);
  }
}

Result<std::unique_ptr<Swarm>> Swarm::start(asio::any_io_executor executor, SwarmOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->executor = executor;
  impl->listen = options.listen;
  impl->identity = options.identity;
  impl->peers_per_torrent = options.peers_per_torrent;
  impl->first_seed_hold = options.first_seed_hold;
  impl->one_copy_quiet = options.one_copy_quiet;
  // No plugins: ut_metadata and ut_pex do nothing for private torrents, and libtorrent bans
  // a peer whose block failed a hash check by itself (smart_ban is not needed for that).
  lt::session_params params(base_settings(options), std::vector<std::shared_ptr<lt::plugin>>{});
  params.disk_io_constructor = range_disk_io_constructor;
  try {
    impl->session = std::make_unique<lt::session>(std::move(params));
  } catch (const std::exception& e) {
    return Error(Errc::kInternal, std::string("cannot start the BitTorrent session: ") + e.what());
  }
  // The listen sockets open asynchronously: wait (at most 5 s) for the outcome, so port() is
  // right and a bad address fails start().
  for (int i = 0; i < 50; ++i) {
    impl->session->wait_for_alert(lt::milliseconds(100));
    std::vector<lt::alert*> alerts;
    impl->session->pop_alerts(&alerts);
    for (lt::alert* a : alerts) {
      if (auto* failed = lt::alert_cast<lt::listen_failed_alert>(a)) {
        return Error(Errc::kConfigInvalid, "swarm: " + failed->message());
      }
    }
    if (impl->bound_port() != 0) break;
  }
  if (impl->bound_port() == 0) {
    return Error(Errc::kConfigInvalid, "swarm: cannot listen on " + options.listen);
  }
  // Rate limits apply to every peer: libtorrent exempts local networks by default, and a
  // site's nodes are all on one.
  lt::ip_filter classes;
  const auto global = 1u << static_cast<std::uint32_t>(lt::session::global_peer_class_id);
  classes.add_rule(boost::asio::ip::make_address("0.0.0.0"),
                   boost::asio::ip::make_address("255.255.255.255"), global);
  classes.add_rule(boost::asio::ip::make_address("::"),
                   boost::asio::ip::make_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                   global);
  impl->session->set_peer_class_filter(classes);
  Impl* raw = impl.get();
  std::weak_ptr<bool> alive = impl->alive;
  // libtorrent's thread only posts; alerts are handled on our executor.
  impl->session->set_alert_notify([raw, alive, executor] {
    asio::post(executor, [raw, alive] {
      if (auto a = alive.lock(); a && *a) raw->drain();
    });
  });
  return std::unique_ptr<Swarm>(new Swarm(std::move(impl)));
}

std::uint16_t Swarm::port() const { return impl_->bound_port(); }

void Swarm::set_identity(Identity identity) {
  const bool was_closed = impl_->identity.has_value();
  const std::uint16_t plain_port = impl_->session->listen_port();
  impl_->identity = std::move(identity);
  if (was_closed) return;  // a renewed certificate: torrents added from now on use it
  // Keep the port the node has (a configured port 0 picked one already).
  std::string listen = impl_->listen;
  const auto colon = listen.rfind(':');
  if (colon != std::string::npos) listen = listen.substr(0, colon + 1) + std::to_string(plain_port);
  lt::settings_pack s;
  s.set_str(lt::settings_pack::listen_interfaces, listen_spec(listen, true));
  impl_->session->apply_settings(std::move(s));
}

std::size_t Swarm::torrents() const { return impl_->by_id.size(); }

Result<std::string> Swarm::make_metainfo(int fd, std::uint64_t offset, std::uint64_t length,
                                         int piece_length, const std::string& root_cert) {
  lt::file_storage fs;
  fs.add_file("chunk", static_cast<std::int64_t>(length));
  // Hybrid (v1 + v2): pieces are checked against SHA-256 merkle roots and SHA-1 alike. A v2-only
  // torrent crashes libtorrent 2.0.8 (SEGV in its hash-failure path) once a peer sends a
  // corrupt piece: tests/integration "a peer sending corrupt pieces" caught it.
  lt::create_torrent ct(fs, piece_length);
  ct.set_priv(true);
  if (!root_cert.empty()) ct.set_root_cert(root_cert);
  auto file = SharedFile::dup(fd);
  if (!file) return file.error();
  const Registered path = register_file(std::move(*file), offset);
  lt::error_code ec;
  lt::settings_pack settings;
  lt::set_piece_hashes(
      ct, path.save_path, settings, range_disk_io_constructor, [](lt::piece_index_t) {}, ec);
  release_fd(path.save_path);  // if the hashing never opened it
  if (ec) return Error(Errc::kStorage, "hashing a chunk: " + ec.message());
  const std::vector<char> buf = ct.generate_buf();
  return std::string(buf.begin(), buf.end());
}

Result<ChunkInfo> Swarm::inspect(const std::string& metainfo) {
  lt::error_code ec;
  auto ti = std::make_shared<lt::torrent_info>(
      lt::span<char const>(metainfo.data(), static_cast<std::ptrdiff_t>(metainfo.size())), ec,
      lt::from_span);
  if (ec) return Error(Errc::kBadUpstreamResponse, "bad metainfo: " + ec.message());
  // One file (libtorrent adds a pad file after it up to a whole last piece).
  const lt::file_storage& files = ti->files();
  const bool single =
      files.num_files() == 1 || (files.num_files() == 2 && files.pad_file_at(lt::file_index_t(1)) &&
                                 !files.pad_file_at(lt::file_index_t(0)));
  if (!ti->info_hashes().has_v2() || !single) {
    return Error(Errc::kBadUpstreamResponse, "metainfo is not a v2 single-file torrent");
  }
  ChunkInfo info;
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : ti->info_hashes().v2) {
    info.info_hash.push_back(kHex[c >> 4]);
    info.info_hash.push_back(kHex[c & 0xf]);
  }
  info.pieces = ti->num_pieces();
  info.piece_length = ti->piece_length();
  info.length = static_cast<std::uint64_t>(files.file_size(lt::file_index_t(0)));
  return info;
}

Result<TorrentId> Swarm::add(Add params, TorrentObserver* observer) {
  lt::error_code ec;
  auto ti = std::make_shared<lt::torrent_info>(
      lt::span<char const>(params.metainfo.data(),
                           static_cast<std::ptrdiff_t>(params.metainfo.size())),
      ec, lt::from_span);
  if (ec) return Error(Errc::kBadUpstreamResponse, "bad metainfo: " + ec.message());
  if (!params.file) return Error(Errc::kInternal, "adding a torrent without its file");
  if (impl_->removing.count(ti->info_hashes())) {
    return Error(Errc::kBusy, "the torrent is still being removed");
  }
  const bool ssl = !ti->ssl_cert().empty();
  if (ssl && !impl_->identity) {
    return Error(Errc::kUpstreamUnavailable,
                 "a closed site's torrent, and this node has no member certificate yet");
  }
  Registered path = register_file(std::move(params.file), params.offset, piece_hashes(*ti));
  lt::add_torrent_params atp;
  atp.ti = std::move(ti);
  atp.save_path = path.save_path;
  atp.flags &= ~lt::torrent_flags::auto_managed;  // every chunk stays active
  // An SSL torrent connects to no peer before it has a certificate: added paused, resumed once
  // the certificate is set.
  if (ssl) {
    atp.flags |= lt::torrent_flags::paused;
  } else {
    atp.flags &= ~lt::torrent_flags::paused;
  }
  if (params.seed) atp.flags |= lt::torrent_flags::seed_mode;
  if (!params.seed && params.urgent_pieces > 0) {
    // In the parameters, so that they hold from the first request on.
    const int pieces = atp.ti->num_pieces();
    atp.piece_priorities.assign(static_cast<std::size_t>(pieces), lt::default_priority);
    for (int i = 0; i < std::min(pieces, params.urgent_pieces); ++i) {
      atp.piece_priorities[static_cast<std::size_t>(i)] = lt::top_priority;
    }
  }
  // Peers that hold requests back cancel them, and only a reject ends them (one_copy.h).
  atp.extensions.push_back(reject_cancels());
  if (!params.seed && impl_->one_copy_quiet.count() > 0) {
    atp.extensions.push_back(one_copy_in_flight(impl_->one_copy, impl_->one_copy_quiet));
  }
  if (params.seed && params.first_seed) {
    atp.max_uploads = 1;
    if (impl_->first_seed_hold.count() > 0) {
      atp.extensions.push_back(
          first_seed_filter(impl_->ledger, atp.ti->num_pieces(), impl_->first_seed_hold));
    }
  }
  // A chunk torrent needs a handful of peers, not the whole site: at 1,000 nodes, every chunk
  // torrent connecting to every node would be 1,000 connections per chunk. The first seed
  // (the supernode) takes everyone: its one rotating upload slot picks among them.
  if (!params.first_seed) atp.max_connections = impl_->peers_per_torrent;
  atp.trackers = params.trackers;
  // The peers named by the caller (the first seed) go in with the torrent, not through
  // connect_peer() after it: that call reaches libtorrent's thread later, and if the tracker's
  // first reply came first, the torrent's one immediate round of dials (on that reply) found
  // no peer, and the next round waits for libtorrent's once-a-second tick. 14 of 40 1 MiB
  // blobs in 16 KiB chunks took ~1 s instead of ~0.12 s (docs/benchmarks.md "A chunk
  // torrent's first dial").
  for (const auto& [host, port] : params.peers) {
    boost::system::error_code bad;
    const auto addr = boost::asio::ip::make_address(host, bad);
    if (!bad) atp.peers.emplace_back(addr, port);
  }
  lt::torrent_handle handle = impl_->session->add_torrent(std::move(atp), ec);
  if (ec) {
    release_fd(path.save_path);
    return Error(Errc::kInternal, "adding a torrent: " + ec.message());
  }
  if (ssl) {
    const Identity& me = *impl_->identity;
    handle.set_ssl_certificate_buffer(me.certificate, me.private_key, me.dh_params);
    handle.resume();
  }
  const TorrentId id = impl_->next_id++;
  impl_->by_id[id] = handle;
  impl_->by_handle[handle] = Impl::Entry{id, observer, std::move(path.gate), false, std::nullopt};
  return id;
}

void Swarm::remove(TorrentId id) {
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return;
  auto entry = impl_->by_handle.find(it->second);
  if (entry != impl_->by_handle.end()) {
    if (entry->second.gate) entry->second.gate->revoke();
    impl_->by_handle.erase(entry);
  }
  impl_->removing.insert(it->second.info_hashes());
  impl_->session->remove_torrent(it->second);
  impl_->by_id.erase(it);
}

std::uint64_t Swarm::Impl::payload(TorrentId id, std::int64_t lt::torrent_status::*field) const {
  auto it = by_id.find(id);
  if (it == by_id.end()) return 0;
  const lt::torrent_status st = it->second.status(lt::status_flags_t{});
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, st.*field));
}

std::uint64_t Swarm::uploaded(TorrentId id) const {
  return impl_->payload(id, &lt::torrent_status::total_payload_upload);
}

std::uint64_t Swarm::received(TorrentId id) const {
  return impl_->payload(id, &lt::torrent_status::total_payload_download);
}

std::string Swarm::describe(TorrentId id) const {
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return "no such torrent";
  std::vector<lt::peer_info> peers;
  it->second.get_peer_info(peers);
  if (peers.empty()) return "no peer connection";
  std::string out;
  for (const auto& p : peers) {
    if (!out.empty()) out += "; ";
    out += p.ip.address().to_string() + ":" + std::to_string(p.ip.port());
    if (p.flags & lt::peer_info::seed) out += " seed";
    if (p.flags & lt::peer_info::remote_choked) out += " chokes-us";
    if (p.flags & lt::peer_info::snubbed) out += " snubbed";
    if (p.flags & (lt::peer_info::connecting | lt::peer_info::handshake)) out += " connecting";
    out += " queue " + std::to_string(p.download_queue_length) + "/" +
           std::to_string(p.target_dl_queue_length) + " (" + std::to_string(p.timed_out_requests) +
           " timed out), received " + std::to_string(p.total_download) + " B";
  }
  return out;
}

void Swarm::detach(TorrentId id) {
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return;
  impl_->by_handle[it->second].observer = nullptr;
}

// Top priority rather than piece deadlines: libtorrent 2.0.8 dereferences a null piece picker
// when a torrent with deadlines completes (SEGV, 2 of 20 runs of the three-agent test).
void Swarm::Impl::set_priorities(const lt::torrent_handle& handle, int first, int count) {
  const auto info = handle.torrent_file();
  const int pieces = info ? info->num_pieces() : 0;
  std::vector<std::pair<lt::piece_index_t, lt::download_priority_t>> wanted;
  for (int i = 0; i < count && first + i < pieces; ++i) {
    wanted.emplace_back(lt::piece_index_t(first + i), lt::top_priority);
  }
  if (!wanted.empty()) handle.prioritize_pieces(wanted);
}

void Swarm::prioritize(TorrentId id, int first, int count) {
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return;
  auto entry = impl_->by_handle.find(it->second);
  if (entry == impl_->by_handle.end()) return;
  if (!entry->second.checked) {
    entry->second.pending_priorities = std::make_pair(first, count);
    return;
  }
  Impl::set_priorities(it->second, first, count);
}

SwarmStats Swarm::stats() const {
  // Peers come from libtorrent's session counters, which arrive as an alert: this asks for
  // fresh ones and answers with the last received (a scrape interval old).
  impl_->session->post_session_stats();
  return last_stats();
}

SwarmStats Swarm::last_stats() const {
  SwarmStats stats = impl_->last;
  stats.torrents = impl_->by_id.size();
  return stats;
}

void add_swarm_metrics(const void* owner, Swarm& swarm) {
  Metrics& m = Metrics::get();
  Swarm* s = &swarm;
  // One request for fresh counters per scrape (here); the other values read the last received.
  m.add_sampled(owner,
                {"layerswarm_swarm_torrents", "Chunk torrents loaded in the swarm", false, {}, [s] {
                   return static_cast<double>(s->stats().torrents);
                 }});
  m.add_sampled(
      owner, {"layerswarm_swarm_peers", "Peer connections over all chunk torrents", false, {}, [s] {
                return static_cast<double>(s->last_stats().peers);
              }});
  // libtorrent's byte counters: what the swarm carried, and what of it was wasted.
  const auto bytes = [&](const char* name, const char* help, std::uint64_t SwarmStats::*field) {
    m.add_sampled(owner, {name, help, true, {}, [s, field] {
                            return static_cast<double>(s->last_stats().*field);
                          }});
  };
  bytes("layerswarm_swarm_received_bytes_total", "Payload bytes received from peers",
        &SwarmStats::payload_received);
  bytes("layerswarm_swarm_sent_bytes_total", "Payload bytes sent to peers",
        &SwarmStats::payload_sent);
  bytes("layerswarm_swarm_redundant_bytes_total",
        "Payload bytes received that were already had (end-game duplicates, late answers)",
        &SwarmStats::redundant_received);
  bytes("layerswarm_swarm_hash_failed_bytes_total",
        "Payload bytes received in pieces that failed their hash check",
        &SwarmStats::failed_received);
}

}  // namespace layerswarm::p2p
