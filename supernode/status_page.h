// The supernode's status page (docs/operations.md "Status page"): supernode/ui/status.html,
// compiled in by CMake so the binary serves it with no files beside it.
#pragma once

#include <string_view>

namespace layerswarm::supernode {

std::string_view status_page_html();

}  // namespace layerswarm::supernode
