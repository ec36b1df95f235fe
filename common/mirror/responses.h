// Writing common responses: OCI errors and small in-memory bodies. Each records what it sent
// in the request's log record.
#pragma once

#include <string_view>

#include "common/http_server.h"
#include "common/log.h"
#include "common/result.h"

namespace layerswarm::mirror {

// An OCI error JSON with the status from the error table (HEAD: headers only). Adds
// Retry-After to 429 and Allow to 405.
Task<void> send_error(ResponseWriter& out, Error error, RequestLog& log);

// `head` with `body` (Content-Length set here).
Task<void> send_body(ResponseWriter& out, ResponseHead head, std::string_view body,
                     RequestLog& log);

}  // namespace layerswarm::mirror
