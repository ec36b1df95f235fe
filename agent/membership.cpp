#include "agent/membership.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/log.h"
#include "common/pki.h"
#include "common/swarm_protocol.h"

namespace layerswarm::agent {
namespace {

namespace proto = swarm_protocol;

constexpr std::chrono::seconds kRetry{30};
constexpr std::size_t kMaxAnswer = 64 * 1024;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error bad(const std::string& why) {
  return Error(Errc::kBadUpstreamResponse, "member certificate: " + why);
}

}  // namespace

Task<Result<std::optional<Membership>>> request_membership(SupernodeLink& link) {
  auto key = pki::generate_key();
  if (!key) co_return key.error();
  auto der = pki::public_key_der(*key);
  if (!der) co_return der.error();
  Headers headers;
  headers.add(proto::kPublicKey, base64_encode(*der));
  auto answer =
      co_await link.post(std::string(proto::kCertificatePath), std::move(headers), kMaxAnswer);
  if (!answer) co_return answer.error();
  if (answer->status == 404) co_return std::optional<Membership>();
  if (answer->status == 401 || answer->status == 403) {
    co_return Error(Errc::kDenied, "the supernode refused the cluster token (" +
                                       std::to_string(answer->status) + ")");
  }
  if (answer->status != 200) co_return bad("status " + std::to_string(answer->status));
  const auto doc = nlohmann::json::parse(answer->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("certificate") || !doc["certificate"].is_string() ||
      !doc.contains("ca") || !doc["ca"].is_string()) {
    co_return bad("malformed answer");
  }
  const std::string cert = doc["certificate"].get<std::string>();
  const std::string site_ca = doc["ca"].get<std::string>();
  if (auto ok = pki::verify(site_ca, cert); !ok) co_return bad(ok.error().what());
  if (!pki::key_matches(cert, *key)) co_return bad("not for this agent's key");
  auto info = pki::inspect(cert);
  if (!info) co_return info.error();
  auto dh = pki::dh_params();
  if (!dh) co_return dh.error();
  Membership m;
  m.identity = p2p::Identity{cert, std::move(*key), std::move(*dh)};
  m.expires = info->not_after;
  m.fingerprint = info->fingerprint;
  co_return std::optional<Membership>(std::move(m));
}

MembershipKeeper::MembershipKeeper(asio::any_io_executor executor, SupernodeLink& link,
                                   p2p::Swarm& swarm)
    : executor_(executor),
      link_(link),
      swarm_(swarm),
      timer_(std::make_shared<asio::steady_timer>(executor)) {}

MembershipKeeper::~MembershipKeeper() {
  *alive_ = false;
  timer_->cancel();
}

void MembershipKeeper::start(std::optional<Membership> current, bool open_site) {
  if (open_site) return;  // nothing to keep
  current_ = std::move(current);
  asio::co_spawn(executor_, run(alive_), asio::detached);
}

Task<void> MembershipKeeper::run(std::shared_ptr<bool> alive) {
  // Bounded: one pass per renewal or retry, far more than a process lives.
  for (int pass = 0; pass < 1'000'000 && *alive; ++pass) {
    std::chrono::seconds wait = kRetry;
    if (current_) {
      // Renew when a third of the remaining lifetime is left (at least a minute from now).
      const std::int64_t left = current_->expires - unix_now();
      wait = std::chrono::seconds(std::max<std::int64_t>(60, left * 2 / 3));
    }
    timer_->expires_after(wait);
    boost::system::error_code ec;
    co_await timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive) co_return;
    auto joined = co_await request_membership(link_);
    if (!*alive) co_return;
    if (!joined) {
      LOG_WARN(
          "swarm: cannot get a member certificate from the supernode: {}; asking again in "
          "{} s (blobs come over HTTP meanwhile)",
          joined.error().what(), kRetry.count());
      continue;
    }
    if (!*joined) {
      if (current_) {
        LOG_WARN("swarm: the supernode now says the site is open; keeping the certificate");
      } else {
        LOG_WARN(
            "swarm: an open site (the supernode issues no member certificates): peer "
            "traffic is plaintext (docs/security.md)");
      }
      co_return;
    }
    current_ = std::move(**joined);
    swarm_.set_identity(current_->identity);
    link_.set_member(true);
    LOG_INFO("swarm: member certificate sha256 {} (until {})", current_->fingerprint,
             current_->expires);
  }
}

}  // namespace layerswarm::agent
