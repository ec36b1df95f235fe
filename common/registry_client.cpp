#include "common/registry_client.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/log.h"
#include "common/metrics.h"

namespace layerswarm {

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr std::size_t kTokenBodyLimit = 1 << 20;
constexpr std::size_t kDiscardLimit = 64 * 1024;

bool is_retriable_status(int status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::optional<std::chrono::milliseconds> retry_after(const Headers& headers) {
  auto v = headers.get("Retry-After");
  if (!v) return std::nullopt;
  try {
    return std::chrono::seconds(std::stoul(std::string(*v)));
  } catch (const std::exception&) {
    return std::nullopt;  // an HTTP date: use the normal backoff
  }
}

// Reads and drops a small body so the connection can be reused.
Task<void> discard(ClientResponse& r) {
  if (r.content_length && *r.content_length <= kDiscardLimit) {
    auto ignored = co_await r.read_all(kDiscardLimit);
    (void)ignored;
  }
}

}  // namespace

Error upstream_status_error(int status, Errc not_found) {
  const std::string text = "upstream answered " + std::to_string(status);
  if (status == 404) return Error(not_found, text);
  if (status == 401) return Error(Errc::kUnauthorized, text);
  if (status == 403) return Error(Errc::kDenied, text);
  if (status == 429) return Error(Errc::kTooManyRequests, text);
  if (status >= 500) return Error(Errc::kUpstreamUnavailable, text);
  return Error(Errc::kBadUpstreamResponse, text);
}

RegistryClient::RegistryClient(asio::any_io_executor executor, RegistryEntry entry,
                               ClientOptions options, RetryPolicy retry, const Clock& clock)
    : entry_(std::move(entry)), retry_(retry), clock_(clock), http_(std::move(executor), [&] {
        options.ca_file = entry_.ca_file;
        options.insecure_skip_verify = entry_.insecure_skip_verify;
        return options;
      }()) {}

RegistryClient::~RegistryClient() {
  if (offline_since_) --reachability().offline;
}

void RegistryClient::warm_up() {
  if (entry_.url.tls()) http_.prepare_tls();
}

Task<Result<std::unique_ptr<ClientResponse>>> RegistryClient::fetch(UpstreamCall call) {
  auto result = co_await attempt(std::move(call));
  // The metrics (docs/operations.md): one request per call, by its final code.
  Metrics& m = Metrics::get();
  if (result) {
    const int status = (*result)->status;
    m.upstream_request(entry_.name, std::to_string(status));
    if (status == 401 || status == 403) m.upstream_auth_failure(entry_.name);
  } else {
    const auto& code = result.error().code;
    m.upstream_request(entry_.name, code == make_error_code(Errc::kDenied) ? "denied" : "error");
    if (code == make_error_code(Errc::kDenied) || code == make_error_code(Errc::kUnauthorized)) {
      m.upstream_auth_failure(entry_.name);
    }
  }
  co_return result;
}

Task<Result<std::unique_ptr<ClientResponse>>> RegistryClient::attempt(UpstreamCall call) {
  Url url = entry_.url;
  std::string base = url.target.substr(0, url.target.find('?'));
  while (!base.empty() && base.back() == '/') base.pop_back();
  url.target = base + "/v2/" + call.repository + "/" + call.path;
  if (!entry_.ns.empty()) url.add_query("ns", entry_.ns);
  std::string scope = "repository:" + call.repository + ":pull";
  std::string method = call.method;
  bool challenged = false;  // a 401 to a request without credentials was answered
  bool refreshed = false;   // a 401 to a request with credentials was answered (once)
  int failures = 0;
  int hops = 0;

  for (int step = 0; step < 32; ++step) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= call.deadline) co_return Error(Errc::kTimeout, "upstream did not answer in time");
    ClientRequest req{method, url, call.headers,
                      std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline - now)};
    const bool at_registry = url.origin() == entry_.url.origin();
    bool sent_credentials = false;
    if (at_registry) {
      auto auth = co_await authorization(scope, call.deadline);
      if (!auth) co_return auth.error();
      sent_credentials = !auth->empty();
      if (sent_credentials) req.headers.set("Authorization", std::move(*auth));
    }
    auto resp = co_await http_.send(std::move(req));
    if (!resp) {
      // A refused address (docs/security.md "Request forgery") is final: no retry, and the
      // client learns it is denied, not that the registry is down.
      if (resp.error().code == make_error_code(Errc::kDenied)) {
        co_return Error(Errc::kDenied, entry_.name + ": " + resp.error().what());
      }
      const bool timed_out = resp.error().code == make_error_code(Errc::kTimeout);
      LOG_DEBUG("upstream {} {}: {}", method, url.str(), resp.error().what());
      bool again = ++failures < retry_.attempts;
      if (again) again = co_await backoff(failures, call.deadline, std::nullopt);
      if (again) continue;
      Error failed(timed_out ? Errc::kTimeout : Errc::kUpstreamUnavailable,
                   entry_.name + ": " + resp.error().what());
      note_unreachable(failed);
      co_return failed;
    }
    ClientResponse& r = **resp;
    if (r.status < 500) note_reachable();
    note_rate_limit(r.headers, call);

    // A 401 to a request without credentials: authenticate. A 401 to one with credentials
    // (a token expired in flight, revoked, or for too narrow a scope): drop them and fetch
    // new ones, once.
    if (r.status == 401 && at_registry && (sent_credentials ? !refreshed : !challenged)) {
      (sent_credentials ? refreshed : challenged) = true;
      auto challenge = pick_challenge(r.headers.get_all("WWW-Authenticate"));
      if (!challenge) challenge = challenge_;  // some registries only challenge the ping
      if (!challenge) co_return resp;
      if (challenge->scheme == "bearer" && challenge->param("error") == "insufficient_scope" &&
          !challenge->param("scope").empty()) {
        scope = challenge->param("scope");
      }
      challenge_ = std::move(challenge);
      // Whatever token we sent was refused: drop every cached token for this scope.
      for (auto it = tokens_.begin(); it != tokens_.end();) {
        it = it->first.find("|" + scope + "|") != std::string::npos ? tokens_.erase(it) : ++it;
      }
      co_await discard(r);
      continue;
    }
    if (is_redirect(r.status)) {
      const auto location = r.headers.get("Location");
      if (!location) co_return resp;
      if (++hops > 10) co_return Error(Errc::kBadUpstreamResponse, "too many redirects");
      auto next = url.resolve(*location);
      if (!next)
        co_return Error(Errc::kBadUpstreamResponse, "bad redirect: " + next.error().what());
      if (r.status == 303 && method != "HEAD") method = "GET";
      co_await discard(r);
      url = std::move(*next);  // Authorization is only added for the registry's own origin
      continue;
    }
    if (is_retriable_status(r.status) && ++failures < retry_.attempts) {
      const auto hint = retry_after(r.headers);
      co_await discard(r);
      const bool again = co_await backoff(failures, call.deadline, hint);
      if (again) continue;
      Error failed = upstream_status_error(r.status, Errc::kUpstreamUnavailable);
      if (r.status >= 500) note_unreachable(failed);
      co_return failed;
    }
    co_return resp;
  }
  co_return Error(Errc::kBadUpstreamResponse, "upstream request loop did not settle");
}

Reachability& reachability() {
  static Reachability r;
  return r;
}

void RegistryClient::note_unreachable(const Error& error) {
  if (offline_since_) return;
  offline_since_ = std::chrono::steady_clock::now();
  ++reachability().offline;
  ++reachability().episodes;
  LOG_WARN(
      "upstream {} is unreachable ({}): offline; cached images, and pinned ones past "
      "cache.max_stale, are served from the cache",
      entry_.name, error.what());
}

void RegistryClient::note_reachable() {
  if (!offline_since_) return;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::steady_clock::now() - *offline_since_)
                           .count();
  offline_since_.reset();
  --reachability().offline;
  LOG_INFO("upstream {} answers again: online after {} s offline", entry_.name, seconds);
}

Task<Result<std::string>> RegistryClient::authorization(std::string scope, SteadyTime deadline) {
  if (!entry_.bearer_token.empty()) co_return "Bearer " + entry_.bearer_token;
  if (!challenge_) co_return std::string();
  if (challenge_->scheme == "basic") {
    if (!entry_.has_credentials()) co_return std::string();
    co_return "Basic " + base64_encode(entry_.username + ":" + entry_.password);
  }
  if (challenge_->scheme != "bearer") co_return std::string();
  const std::string key = challenge_->param("realm") + "|" + challenge_->param("service") + "|" +
                          scope + "|" + entry_.username;
  auto it = tokens_.find(key);
  if (it != tokens_.end() && clock_.now() + 30s < it->second.expires) {
    co_return "Bearer " + it->second.value;
  }
  Task<Result<Token>> fetch = fetch_token(*challenge_, scope, deadline);
  auto token = co_await token_flights_.run(key, std::move(fetch));
  if (!token) co_return token.error();
  tokens_[key] = *token;
  co_return "Bearer " + token->value;
}

Task<Result<Token>> RegistryClient::fetch_token(Challenge challenge, std::string scope,
                                                SteadyTime deadline) {
  auto realm = Url::parse(challenge.param("realm"));
  if (!realm) co_return Error(Errc::kBadUpstreamResponse, "bad token realm in challenge");
  Url url = *realm;
  if (!challenge.param("service").empty()) url.add_query("service", challenge.param("service"));
  url.add_query("scope", scope);
  ClientRequest req{"GET", url, {}, std::nullopt};
  if (entry_.has_credentials()) {
    if (realm_may_get_credentials(*realm, entry_.url)) {
      req.headers.add("Authorization",
                      "Basic " + base64_encode(entry_.username + ":" + entry_.password));
    } else {
      LOG_WARN("{}: not sending credentials to token realm {} (another domain)", entry_.name,
               realm->origin());
    }
  }
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) co_return Error(Errc::kTimeout, "no time left to fetch a token");
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  auto resp = co_await http_.send(std::move(req));
  if (!resp) {
    const bool denied = resp.error().code == make_error_code(Errc::kDenied);
    co_return Error(denied ? Errc::kDenied : Errc::kUpstreamUnavailable,
                    "token endpoint: " + resp.error().what());
  }
  const int status = (*resp)->status;
  auto body = co_await (*resp)->read_all(kTokenBodyLimit);
  if (status == 401 || status == 403) {
    co_return Error(Errc::kDenied,
                    "token endpoint refused the credentials (" + std::to_string(status) + ")");
  }
  if (status != 200) co_return upstream_status_error(status, Errc::kUpstreamUnavailable);
  if (!body) co_return Error(Errc::kUpstreamUnavailable, "token body: " + body.error().what());
  co_return parse_token_response(*body, clock_.now());
}

Task<bool> RegistryClient::backoff(int attempt, SteadyTime deadline,
                                   std::optional<std::chrono::milliseconds> hint) {
  auto wait = retry_.base_backoff * (1 << std::min(attempt - 1, 10));
  if (hint) wait = *hint;
  wait = std::min(wait, retry_.max_backoff);
  if (std::chrono::steady_clock::now() + wait >= deadline) co_return false;
  asio::steady_timer timer(co_await asio::this_coro::executor, wait);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return true;
}

void RegistryClient::note_rate_limit(const Headers& headers, const UpstreamCall& call) {
  const auto remaining = headers.get("ratelimit-remaining");
  if (!remaining) return;
  const std::string limit(headers.get("ratelimit-limit").value_or("?"));
  // "76;w=21600": count before the ';'.
  const std::string left(remaining->substr(0, remaining->find(';')));
  const std::string total = limit.substr(0, limit.find(';'));
  bool low = false;
  try {
    low = std::stol(left) * 10 < std::stol(total);
  } catch (const std::exception&) {
  }
  if (low) {
    LOG_WARN("{} rate limit low: {} of {} pulls left ({} {})", entry_.name, left, total,
             call.method, call.repository);
  } else {
    LOG_DEBUG("{} rate limit: {} of {} pulls left", entry_.name, left, total);
  }
}

}  // namespace layerswarm
