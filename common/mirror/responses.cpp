#include "common/mirror/responses.h"

namespace layerswarm::mirror {

Task<void> send_error(ResponseWriter& out, Error error, RequestLog& log) {
  const OciError oci = to_oci(error.code);
  const std::string body = oci_error_body(error.code, error.what());
  ResponseHead head;
  head.status = oci.status;
  head.headers.add("Content-Type", "application/json");
  if (oci.status == 429) head.headers.add("Retry-After", "10");
  if (oci.status == 405) head.headers.add("Allow", "GET, HEAD");
  log.error = error.what();
  co_await send_body(out, std::move(head), body, log);
}

Task<void> send_body(ResponseWriter& out, ResponseHead head, std::string_view body,
                     RequestLog& log) {
  log.status = head.status;
  co_await out.write_whole(std::move(head), body);
  log.bytes = out.body_bytes();
}

}  // namespace layerswarm::mirror
