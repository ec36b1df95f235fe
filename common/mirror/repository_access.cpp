#include "common/mirror/repository_access.h"

#include <string>

namespace layerswarm::mirror {

Shown shown_in(Store& store, const Clock& clock, const Digest& digest, std::string_view registry,
               std::string_view repository, std::chrono::milliseconds check_interval) {
  Shown shown;
  shown.at = store.shown_in(digest, registry, repository);
  shown.fresh = shown.at && clock.now() - *shown.at < check_interval;
  return shown;
}

Status settle(Store& store, const Digest& digest, std::string_view registry,
              std::string_view repository, const Shown& shown, const Status& answer, Errc unknown) {
  if (answer) {
    store.note_shown(digest, registry, repository);
    return {};
  }
  const auto code = answer.error().code;
  if (code == make_error_code(unknown) || code == make_error_code(Errc::kNameUnknown) ||
      code == make_error_code(Errc::kDenied) || code == make_error_code(Errc::kUnauthorized)) {
    if (shown.at) store.forget_shown(digest, registry, repository);
    const char* what = unknown == Errc::kBlobUnknown ? "blob" : "manifest";
    return Error(unknown, std::string(what) + " unknown to registry in " + std::string(registry) +
                              "/" + std::string(repository));
  }
  if (shown.at) return {};  // the upstream cannot tell now; it showed it here before
  return answer.error();
}

}  // namespace layerswarm::mirror
