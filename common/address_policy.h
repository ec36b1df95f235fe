// Where a mirror may connect on a client's say-so (docs/security.md "Request forgery"): a
// registry nobody configured (`?ns=` of an unlisted registry, and the redirects and token
// realms it names) must not make the node connect to its own network's inside.
//
// Threading: pure, except that the node's own addresses are read once (getifaddrs) and cached.
#pragma once

#include <string_view>

namespace layerswarm {

// True for loopback (127/8, ::1), unspecified (0.0.0.0, ::), private (10/8, 172.16/12,
// 192.168/16, 100.64/10, fc00::/7), link-local (169.254/16, fe80::/10), multicast, broadcast,
// and this node's own interface addresses. IPv4-mapped IPv6 addresses are judged as IPv4.
// Text that is not an IP address counts as internal (refuse what cannot be judged).
bool is_internal_address(std::string_view ip);

}  // namespace layerswarm
