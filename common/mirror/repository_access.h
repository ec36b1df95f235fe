// Per-repository access (docs/security.md): what BlobService::admit and ManifestService::admit
// share. The cache holds each object once, by digest; it is handed out under a (registry,
// repository) only once the upstream gave or confirmed it there. The index keeps the time of
// the last confirmation; one older than the check interval is renewed by asking the upstream.
//
// Threading: the io_context thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "common/clock.h"
#include "common/error.h"
#include "common/result.h"
#include "common/store.h"

namespace layerswarm::mirror {

struct Shown {
  std::optional<TimePoint> at;  // the last confirmation there, if any
  bool fresh = false;           // younger than the check interval: no need to ask
};

Shown shown_in(Store& store, const Clock& clock, const Digest& digest, std::string_view registry,
               std::string_view repository, std::chrono::milliseconds check_interval);

// The decision once the upstream answered a confirmation request there (`answer`: success, or
// its error), recorded in the index. Errors: `unknown` (the upstream says 404, 401 or 403
// there), the upstream's error when it cannot tell and never showed the object there (an
// earlier confirmation counts while it cannot be asked: offline edge).
Status settle(Store& store, const Digest& digest, std::string_view registry,
              std::string_view repository, const Shown& shown, const Status& answer, Errc unknown);

}  // namespace layerswarm::mirror
