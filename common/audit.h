// The audit log (docs/security.md "Audit log"): one JSON line per pull request (manifests and
// blobs) and per refusal: when, from where, who (a username, or a hash of a bearer token: never
// the secret), what (registry, repository, reference), the decision and why, and where the bytes
// came from. Harbor-style "who pulled what, when". Off unless a file is configured.
//
// Threading: the io_context thread (one write(2) per line, O_APPEND).
#pragma once

#include <string>
#include <string_view>

#include "common/log.h"
#include "common/result.h"

namespace layerswarm {

// Opens (creates, mode 0640) `path` for appending; "" turns the audit log off.
// Errors: kConfigInvalid (cannot open).
Status open_audit_log(const std::string& path);
// Whether the audit log is on (callers skip working out identities when it is not).
bool audit_enabled();
// Writes `r` when it is a pull (manifests/..., blobs/...) or a refusal (401/403).
void audit(const RequestLog& r);
// Who an Authorization header value names: "user:<name>" for Basic, "token:<first 16 hex of
// its SHA-256>" for Bearer, "anonymous" without one, "unknown" for anything else.
std::string audit_identity(std::string_view authorization);

}  // namespace layerswarm
