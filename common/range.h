// HTTP Range requests for blobs (RFC 9110 14, PROTOCOL.md 2 and 7): one byte range per request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace layerswarm {

struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
  std::uint64_t length() const { return last - first + 1; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct RangeRequest {
  enum class Kind {
    kWhole,          // no Range header, another unit, or several ranges: answer 200 with all
    kPartial,        // answer 206 with `range`
    kUnsatisfiable,  // answer 416 with `Content-Range: bytes */size`
  };
  Kind kind = Kind::kWhole;
  ByteRange range;
};

// Interprets a Range header value for an object of `size` bytes.
// `a-b` (b clamped to size-1), `a-`, `-n` (the last n bytes). A malformed `bytes=` spec, a start
// past the end, `a-b` with b < a, and `-0` are unsatisfiable.
RangeRequest parse_range(std::optional<std::string_view> header, std::uint64_t size);

// "bytes a-b/size"
std::string content_range(const ByteRange& range, std::uint64_t size);

}  // namespace layerswarm
