// The upstream side of the OCI Distribution API for one registry (PROTOCOL.md 4): builds the
// /v2/<repo>/<path> URL, authenticates (Bearer token flow with a token cache, or Basic),
// follows redirects (dropping Authorization for other hosts), and retries with backoff on
// transport errors, 429 and 5xx, all within the caller's deadline.
//
// Threading: one io_context thread. The client must outlive the calls it runs.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/async.h"
#include "common/auth_challenge.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "common/registry_config.h"
#include "common/token.h"

namespace layerswarm {

struct RetryPolicy {
  int attempts = 3;  // tries in all, for transport errors, 429, 500, 502, 503, 504
  std::chrono::milliseconds base_backoff{250};
  std::chrono::milliseconds max_backoff{4000};  // also caps Retry-After
};

struct UpstreamCall {
  std::string method = "GET";  // GET or HEAD
  std::string repository;      // canonical name, e.g. "library/busybox"
  std::string path;            // after the repository: "manifests/latest", "blobs/sha256:..."
  Headers headers;             // Accept, Range
  SteadyTime deadline;         // nothing new (attempt, token, redirect) starts after it
};

// The error a mirror reports for an upstream status other than 2xx/3xx. `not_found` is the
// code for 404 (kManifestUnknown, kBlobUnknown, kNameUnknown).
Error upstream_status_error(int status, Errc not_found);

// Whether upstreams answer at all (docs/architecture.md "The cache's lifecycle", offline):
// process-wide, for the counters. An upstream is offline from a request that found it
// unreachable (transport errors or 5xx after the retries) until one that got an answer.
struct Reachability {
  std::atomic<std::uint64_t> offline{0};   // upstreams offline now
  std::atomic<std::uint64_t> episodes{0};  // times an upstream went offline
};
Reachability& reachability();

class RegistryClient {
 public:
  RegistryClient(asio::any_io_executor executor, RegistryEntry entry, ClientOptions options,
                 RetryPolicy retry, const Clock& clock);
  ~RegistryClient();

  // Runs `call` and returns the final response, whatever its status (the caller maps it with
  // upstream_status_error). A 401 is answered by fetching a token (or using Basic credentials)
  // and retrying; a 401 to credentials already sent drops them and fetches new ones once. Errors:
  // kTimeout (deadline), kUpstreamUnavailable (transport errors after retries), kDenied (token
  // endpoint refused us), kBadUpstreamResponse.
  Task<Result<std::unique_ptr<ClientResponse>>> fetch(UpstreamCall call);

  const RegistryEntry& entry() const { return entry_; }
  // Pays one-time costs (the TLS context) before the first request.
  void warm_up();

 private:
  // fetch() without the metrics.
  Task<Result<std::unique_ptr<ClientResponse>>> attempt(UpstreamCall call);
  Task<Result<std::string>> authorization(std::string scope, SteadyTime deadline);
  Task<Result<Token>> fetch_token(Challenge challenge, std::string scope, SteadyTime deadline);
  Task<bool> backoff(int attempt, SteadyTime deadline,
                     std::optional<std::chrono::milliseconds> hint);
  void note_rate_limit(const Headers& headers, const UpstreamCall& call);
  void note_reachable();
  void note_unreachable(const Error& error);

  RegistryEntry entry_;
  RetryPolicy retry_;
  const Clock& clock_;
  HttpClient http_;
  std::optional<Challenge> challenge_;   // the last one the registry sent
  std::map<std::string, Token> tokens_;  // realm|service|scope|identity -> token
  SingleFlight<Result<Token>> token_flights_;
  std::optional<SteadyTime> offline_since_;
};

}  // namespace layerswarm
