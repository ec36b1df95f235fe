// parse_range on arbitrary Range headers and sizes: a partial range lies inside the object.
#include <cstring>
#include <string>

#include "common/range.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint64_t object = 0;
  std::memcpy(&object, data, 8);
  object %= (1ull << 40);
  const std::string header(reinterpret_cast<const char*>(data + 8), size - 8);
  const auto r = layerswarm::parse_range(header, object);
  if (r.kind == layerswarm::RangeRequest::Kind::kPartial) {
    if (r.range.first > r.range.last || r.range.last >= object) __builtin_trap();
    if (layerswarm::content_range(r.range, object).empty()) __builtin_trap();
  }
  return 0;
}
