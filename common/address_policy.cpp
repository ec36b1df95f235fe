#include "common/address_policy.h"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <boost/asio/ip/address.hpp>
#include <mutex>
#include <set>
#include <string>

namespace layerswarm {
namespace {

namespace ip = boost::asio::ip;

const std::set<ip::address>& own_addresses() {
  static std::set<ip::address> addresses;
  static std::once_flag once;
  std::call_once(once, [] {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      if (i->ifa_addr->sa_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
        addresses.insert(ip::address_v4(ntohl(sin->sin_addr.s_addr)));
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
        ip::address_v6::bytes_type bytes;
        std::copy(sin6->sin6_addr.s6_addr, sin6->sin6_addr.s6_addr + 16, bytes.begin());
        addresses.insert(ip::address_v6(bytes));
      }
    }
    ::freeifaddrs(list);
  });
  return addresses;
}

bool internal_v4(const ip::address_v4& a) {
  const std::uint32_t v = a.to_uint();
  auto in = [v](std::uint32_t net, int bits) {
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (v & mask) == net;
  };
  return in(0x00000000, 8)      // 0/8 "this network", 0.0.0.0
         || in(0x7f000000, 8)   // loopback
         || in(0x0a000000, 8)   // private
         || in(0xac100000, 12)  // private
         || in(0xc0a80000, 16)  // private
         || in(0x64400000, 10)  // shared address space (carrier NAT)
         || in(0xa9fe0000, 16)  // link-local (cloud metadata services live here)
         || in(0xe0000000, 4)   // multicast
         || v == 0xffffffff;    // broadcast
}

}  // namespace

bool is_internal_address(std::string_view text) {
  boost::system::error_code ec;
  ip::address a = ip::make_address(std::string(text), ec);
  if (ec) return true;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  if (a.is_v4()) {
    if (internal_v4(a.to_v4())) return true;
  } else {
    const ip::address_v6 v6 = a.to_v6();
    const auto b = v6.to_bytes();
    if (v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_multicast() ||
        (b[0] & 0xfe) == 0xfc) {  // fc00::/7 unique local
      return true;
    }
  }
  return own_addresses().count(a) > 0;
}

}  // namespace layerswarm
