#include "common/p2p/one_copy.h"

#include <libtorrent/peer_connection_handle.hpp>
#include <libtorrent/peer_request.hpp>

#include <algorithm>

#include "common/p2p/wire.h"

namespace layerswarm::p2p {

InFlightBook::InFlightBook(std::shared_ptr<OneCopyStats> stats, std::chrono::milliseconds quiet)
    : stats_(std::move(stats)), quiet_(quiet) {}

bool InFlightBook::quiet(const Flight& f, Clock::time_point now) const {
  Clock::time_point last = f.since;
  if (auto it = last_block_.find(f.owner); it != last_block_.end())
    last = std::max(last, it->second);
  return now - last >= quiet_;
}

bool InFlightBook::admit(const Block& block, Conn conn, Clock::time_point now) {
  auto [it, fresh] = flights_.try_emplace(key(block));
  Flight& f = it->second;
  if (fresh || f.owner == conn) {
    f.block = block;
    f.owner = conn;
    f.since = now;
    return true;
  }
  if (quiet(f, now)) {  // its connection stalled: this copy goes out and carries the block
    f.owner = conn;
    f.since = now;
    return true;
  }
  if (std::find(f.waiting.begin(), f.waiting.end(), conn) == f.waiting.end()) {
    f.waiting.push_back(conn);
  }
  ++stats_->held;
  return false;
}

std::vector<InFlightBook::Send> InFlightBook::received(const Block& block, Conn conn,
                                                       Clock::time_point now) {
  last_block_[conn] = now;
  std::vector<Send> out;
  auto it = flights_.find(key(block));
  if (it == flights_.end()) return out;
  for (Conn w : it->second.waiting) {
    if (w != conn) out.push_back(Send{w, it->second.block});
  }
  flights_.erase(it);
  return out;
}

bool InFlightBook::hand_over(Flight& f, Clock::time_point now, std::vector<Send>& out) {
  if (f.waiting.empty()) return false;
  f.owner = f.waiting.front();
  f.waiting.erase(f.waiting.begin());
  f.since = now;
  out.push_back(Send{f.owner, f.block});
  ++stats_->released;
  return true;
}

std::vector<InFlightBook::Send> InFlightBook::ended(const Block& block, Conn conn,
                                                    Clock::time_point now) {
  std::vector<Send> out;
  auto it = flights_.find(key(block));
  if (it == flights_.end() || it->second.owner != conn) return out;
  if (!hand_over(it->second, now, out)) flights_.erase(it);
  return out;
}

InFlightBook::Dropped InFlightBook::drop(Conn conn, Clock::time_point now) {
  Dropped out;
  last_block_.erase(conn);
  for (auto it = flights_.begin(); it != flights_.end();) {
    Flight& f = it->second;
    const auto w = std::remove(f.waiting.begin(), f.waiting.end(), conn);
    if (w != f.waiting.end()) out.cancels.push_back(Send{conn, f.block});
    f.waiting.erase(w, f.waiting.end());
    if (f.owner == conn && !hand_over(f, now, out.sends)) {
      it = flights_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<InFlightBook::Send> InFlightBook::due(Clock::time_point now) {
  std::vector<Send> out;
  for (auto& [k, f] : flights_) {
    if (!f.waiting.empty() && quiet(f, now)) hand_over(f, now, out);
  }
  return out;
}

namespace {

using Clock = InFlightBook::Clock;

InFlightBook::Block block_of(const lt::peer_request& r) {
  return InFlightBook::Block{static_cast<int>(r.piece), r.start, r.length};
}

// Writes a request, cancel or reject for block `b` to the connection.
void write(lt::peer_connection_handle& pc, char id, const InFlightBook::Block& b) {
  const auto m = block_message(id, b.piece, b.start, b.length);
  pc.send_buffer(m.data(), static_cast<int>(m.size()));
}

// One torrent's connections and blocks in flight. Every call comes from libtorrent's network
// thread.
class Torrent final : public lt::torrent_plugin, public std::enable_shared_from_this<Torrent> {
 public:
  Torrent(std::shared_ptr<OneCopyStats> stats, std::chrono::milliseconds quiet)
      : stats_(stats), book_(std::move(stats), quiet) {}

  std::shared_ptr<lt::peer_plugin> new_connection(const lt::peer_connection_handle& pc) override;

  void tick() override { send(book_.due(Clock::now())); }

  InFlightBook& book() { return book_; }

  // Held requests go out now: libtorrent counted them as sent, so the block is answered like
  // any other request of the connection. A connection that has choked us is sent a cancel
  // instead: its reject ends the request, and the next waiter takes the block over.
  void send(const std::vector<InFlightBook::Send>& sends) {
    for (const auto& s : sends) {
      lt::peer_connection_handle* pc = live(s.conn);
      if (pc == nullptr) continue;
      write(*pc, pc->has_peer_choked() ? kCancelMessage : kRequestMessage, s.block);
    }
  }

  // Held requests that are not to go out: cancelled, so that the peer's reject ends them in
  // libtorrent (one_copy.h).
  void cancel(const std::vector<InFlightBook::Send>& cancels) {
    for (const auto& s : cancels) {
      lt::peer_connection_handle* pc = live(s.conn);
      if (pc == nullptr) continue;
      write(*pc, kCancelMessage, s.block);
      ++stats_->cancelled;
    }
  }

  void forget(InFlightBook::Conn conn) { conns_.erase(conn); }

 private:
  lt::peer_connection_handle* live(InFlightBook::Conn conn) {
    auto it = conns_.find(conn);
    if (it == conns_.end()) return nullptr;
    lt::peer_connection_handle& pc = it->second;
    if (pc.native_handle() == nullptr || pc.is_disconnecting()) return nullptr;
    return &pc;
  }

  std::shared_ptr<OneCopyStats> stats_;
  InFlightBook book_;
  std::unordered_map<InFlightBook::Conn, lt::peer_connection_handle> conns_;
};

class Peer final : public lt::peer_plugin {
 public:
  Peer(std::shared_ptr<Torrent> torrent, InFlightBook::Conn id)
      : torrent_(std::move(torrent)), id_(id) {}

  lt::string_view type() const override { return "layerswarm_one_copy"; }

  bool write_request(const lt::peer_request& r) override {
    return !torrent_->book().admit(block_of(r), id_, Clock::now());  // true: not sent
  }
  bool on_piece(const lt::peer_request& r, lt::span<char const>) override {
    torrent_->cancel(torrent_->book().received(block_of(r), id_, Clock::now()));
    return false;
  }
  bool on_reject(const lt::peer_request& r) override {
    torrent_->send(torrent_->book().ended(block_of(r), id_, Clock::now()));
    return false;
  }
  bool on_choke() override {
    // libtorrent keeps this connection's requests until the peer rejects them (fast
    // extension): the held ones among them are cancelled, so that the peer does.
    const auto dropped = torrent_->book().drop(id_, Clock::now());
    torrent_->send(dropped.sends);
    torrent_->cancel(dropped.cancels);
    return false;
  }
  void on_disconnect(const lt::error_code&) override {
    torrent_->forget(id_);
    torrent_->send(torrent_->book().drop(id_, Clock::now()).sends);
  }

 private:
  std::shared_ptr<Torrent> torrent_;
  InFlightBook::Conn id_;
};

std::shared_ptr<lt::peer_plugin> Torrent::new_connection(const lt::peer_connection_handle& pc) {
  if (pc.type() != lt::connection_type::bittorrent) return nullptr;
  const InFlightBook::Conn id = pc.native_handle().get();
  conns_.insert_or_assign(id, pc);
  return std::make_shared<Peer>(shared_from_this(), id);
}

// reject_cancels(): a cancel is answered with a reject, whatever libtorrent does with it.
class RejectCancelsPeer final : public lt::peer_plugin {
 public:
  explicit RejectCancelsPeer(const lt::peer_connection_handle& pc) : pc_(pc) {}

  lt::string_view type() const override { return "layerswarm_reject_cancels"; }

  bool on_cancel(const lt::peer_request& r) override {
    write(pc_, kRejectMessage, block_of(r));
    return false;  // libtorrent drops the request if it still holds it (and rejects it again)
  }

 private:
  lt::peer_connection_handle pc_;
};

class RejectCancels final : public lt::torrent_plugin {
 public:
  std::shared_ptr<lt::peer_plugin> new_connection(const lt::peer_connection_handle& pc) override {
    if (pc.type() != lt::connection_type::bittorrent) return nullptr;
    return std::make_shared<RejectCancelsPeer>(pc);
  }
};

}  // namespace

std::function<std::shared_ptr<lt::torrent_plugin>(lt::torrent_handle const&, lt::client_data_t)>
one_copy_in_flight(std::shared_ptr<OneCopyStats> stats, std::chrono::milliseconds quiet) {
  return [stats = std::move(stats), quiet](lt::torrent_handle const&, lt::client_data_t) {
    return std::make_shared<Torrent>(stats, quiet);
  };
}

std::function<std::shared_ptr<lt::torrent_plugin>(lt::torrent_handle const&, lt::client_data_t)>
reject_cancels() {
  return [](lt::torrent_handle const&, lt::client_data_t) {
    return std::make_shared<RejectCancels>();
  };
}

}  // namespace layerswarm::p2p
