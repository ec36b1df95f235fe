// Answers HEAD and GET /v2/<name>/blobs/<digest> (PROTOCOL.md 2): from the cache with
// sendfile, or by joining the in-flight fetch of the blob and streaming it as it arrives.
// Range requests (206/416) in both cases. Response headers go out as soon as the source has
// announced the size; the last byte of any response waits for the digest check.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>

#include "common/clock.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/mirror/blob_fetch.h"
#include "common/mirror/blob_source.h"
#include "common/mirror/counters.h"
#include "common/store.h"

namespace layerswarm::mirror {

struct BlobServiceOptions {
  // Longest wait for a source to answer before the client gets a 503 (so it falls back).
  std::chrono::milliseconds head_timeout{20'000};
  // Longest wait for the next bytes of an in-flight fetch, with no progress of its source
  // either (BlobFetch::last_activity), before the response is aborted. Not the configurable
  // swarm.stall_timeout, after which the swarm hands over to HTTP.
  std::chrono::milliseconds response_stall_timeout{35'000};
  // How long the upstream's word that a blob is in a repository is trusted (MirrorOptions).
  std::chrono::milliseconds repository_check{600'000};
};

class BlobService {
 public:
  BlobService(Store& store, BlobFetcher& fetcher, BlobSource& source, Counters& counters,
              const Clock& clock, BlobServiceOptions options);

  // `request` is HEAD or GET; `log` receives source, status and bytes.
  Task<void> serve(BlobLocator blob, const HttpRequest& request, ResponseWriter& out,
                   RequestLog& log);
  // Per-repository access (docs/security.md): whether the cache may hand out `blob` (held,
  // or being fetched for another repository) under its registry and repository: the upstream
  // gave or confirmed it there within repository_check, or confirms it now (a HEAD). When
  // the upstream cannot be asked, an earlier confirmation there still counts (offline).
  // Errors: kBlobUnknown (not there, or the upstream refuses us there), the upstream's errors.
  Task<Status> admit(const BlobLocator& blob);

 private:
  Task<void> serve_file(const Digest& digest, OpenBlob blob, const HttpRequest& request,
                        ResponseWriter& out, RequestLog& log);
  Task<void> serve_fetch(std::shared_ptr<BlobFetch> fetch, const Digest& digest,
                         const HttpRequest& request, ResponseWriter& out, RequestLog& log);
  Task<void> serve_head_miss(BlobLocator blob, ResponseWriter& out, RequestLog& log);
  Task<void> stream(BlobFetch& fetch, std::uint64_t& pos, std::uint64_t end, ResponseWriter& out,
                    RequestLog& log);

  Store& store_;
  BlobFetcher& fetcher_;
  BlobSource& source_;
  Counters& counters_;
  const Clock& clock_;
  BlobServiceOptions options_;
};

}  // namespace layerswarm::mirror
