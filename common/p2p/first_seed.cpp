#include "common/p2p/first_seed.h"

#include <libtorrent/peer_connection_handle.hpp>
#include <libtorrent/peer_request.hpp>

#include <algorithm>
#include <optional>
#include <vector>

#include "common/p2p/wire.h"

namespace layerswarm::p2p {
namespace {

using Clock = std::chrono::steady_clock;

bool alive(const lt::peer_connection_handle& p) {
  return p.native_handle() != nullptr && !p.is_disconnecting();
}

// One torrent's pieces and connections. Every call comes from libtorrent's network thread.
class Filter final : public lt::torrent_plugin, public std::enable_shared_from_this<Filter> {
 public:
  Filter(std::shared_ptr<FirstSeedLedger> ledger, int pieces, std::chrono::milliseconds hold)
      : book_(std::move(ledger), pieces, hold) {}

  std::shared_ptr<lt::peer_plugin> new_connection(const lt::peer_connection_handle& pc) override;

  bool refuse(lt::piece_index_t piece, const lt::peer_connection_handle& requester) {
    return book_.refuse(static_cast<int>(piece), requester.native_handle().get(), Clock::now());
  }

  // The upload slot `refused` held goes to the next interested, choked peer (round robin), so
  // the first seed's uplink does not wait for libtorrent's next choking round.
  void pass_slot(const lt::peer_connection_handle& refused) {
    prune();
    for (std::size_t i = 0; i < peers_.size(); ++i) {
      next_ = (next_ + 1) % peers_.size();
      auto& p = peers_[next_];
      if (p == refused || !p.is_peer_interested() || !p.is_choked()) continue;
      p.maybe_unchoke_this_peer();
      return;
    }
  }

  void forget(const lt::peer_connection_handle& pc) {
    peers_.erase(std::remove(peers_.begin(), peers_.end(), pc), peers_.end());
  }

 private:
  void prune() {
    peers_.erase(std::remove_if(peers_.begin(), peers_.end(),
                                [](const lt::peer_connection_handle& p) { return !alive(p); }),
                 peers_.end());
  }

  PieceBook book_;
  std::vector<lt::peer_connection_handle> peers_;
  std::size_t next_ = 0;
};

class Peer final : public lt::peer_plugin {
 public:
  Peer(std::shared_ptr<Filter> filter, lt::peer_connection_handle pc)
      : filter_(std::move(filter)), pc_(std::move(pc)) {}

  lt::string_view type() const override { return "layerswarm_first_seed"; }

  bool on_request(const lt::peer_request& r) override {
    if (!filter_->refuse(r.piece, pc_)) return false;
    const auto m = block_message(kRejectMessage, static_cast<int>(r.piece), r.start, r.length);
    pc_.send_buffer(m.data(), static_cast<int>(m.size()));
    if (!pc_.is_choked()) {
      pc_.choke_this_peer();
      filter_->pass_slot(pc_);
    }
    return true;  // handled: libtorrent does not serve it
  }

  void on_disconnect(const lt::error_code&) override { filter_->forget(pc_); }

 private:
  std::shared_ptr<Filter> filter_;
  lt::peer_connection_handle pc_;
};

std::shared_ptr<lt::peer_plugin> Filter::new_connection(const lt::peer_connection_handle& pc) {
  // Only BitTorrent connections (not web seeds) can be sent a reject.
  if (pc.type() != lt::connection_type::bittorrent) return nullptr;
  peers_.push_back(pc);
  return std::make_shared<Peer>(shared_from_this(), pc);
}

}  // namespace

PieceBook::PieceBook(std::shared_ptr<FirstSeedLedger> ledger, int pieces,
                     std::chrono::milliseconds hold)
    : ledger_(std::move(ledger)),
      given_(static_cast<std::size_t>(std::max(0, pieces))),
      hold_(hold) {
  ledger_->owed += static_cast<std::int64_t>(given_.size());
}

PieceBook::~PieceBook() {
  for (const auto& g : given_) {
    if (!g.at) --ledger_->owed;
  }
}

bool PieceBook::refuse(int piece, const void* requester, Clock::time_point now) {
  if (piece < 0 || static_cast<std::size_t>(piece) >= given_.size()) return false;
  Given& g = given_[static_cast<std::size_t>(piece)];
  if (!g.at) {
    g.at = now;
    g.to = requester;
    --ledger_->owed;
    return false;
  }
  // The same peer goes on with its piece; nothing else is owed; or the holder had its time.
  if (g.to == requester || ledger_->owed <= 0 || now - *g.at >= hold_) return false;
  ++ledger_->refused;
  return true;
}

std::function<std::shared_ptr<lt::torrent_plugin>(lt::torrent_handle const&, lt::client_data_t)>
first_seed_filter(std::shared_ptr<FirstSeedLedger> ledger, int pieces,
                  std::chrono::milliseconds hold) {
  return [ledger = std::move(ledger), pieces, hold](lt::torrent_handle const&, lt::client_data_t) {
    return std::make_shared<Filter>(ledger, pieces, hold);
  };
}

}  // namespace layerswarm::p2p
