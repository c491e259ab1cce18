#include "packages/proxy_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <array>
#include <cstring>

#include "packages/proxy.h"

namespace mcpx::packages {
namespace {

struct V4Net {
  uint32_t base;
  int bits;
};

// Everything in IANA's IPv4 special-purpose registry that is not globally reachable.
constexpr std::array<V4Net, 14> kNonPublicV4 = {{
    {0x00000000, 8},   // 0.0.0.0/8 "this network"
    {0x0A000000, 8},   // 10/8
    {0x64400000, 10},  // 100.64/10 CGNAT
    {0x7F000000, 8},   // 127/8 loopback
    {0xA9FE0000, 16},  // 169.254/16 link-local (cloud metadata)
    {0xAC100000, 12},  // 172.16/12
    {0xC0000000, 24},  // 192.0.0/24 protocol assignments
    {0xC0000200, 24},  // 192.0.2/24 TEST-NET-1
    {0xC0A80000, 16},  // 192.168/16
    {0xC6120000, 15},  // 198.18/15 benchmarking
    {0xC6336400, 24},  // 198.51.100/24 TEST-NET-2
    {0xCB007100, 24},  // 203.0.113/24 TEST-NET-3
    {0xE0000000, 4},   // 224/4 multicast
    {0xF0000000, 4},   // 240/4 reserved, and the broadcast address
}};

bool NonPublicV4(const uint8_t* b) {
  const uint32_t a = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  for (const V4Net& net : kNonPublicV4) {
    const uint32_t mask = ~uint32_t{0} << (32 - net.bits);
    if ((a & mask) == net.base) return true;
  }
  return false;
}

bool AllZero(const uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

bool NonPublicV6(const uint8_t* b) {
  // IPv4 inside IPv6: the kernel or a gateway delivers to the embedded address, so that address
  // decides. ::ffff:a.b.c.d (mapped); ::a.b.c.d (compatible, which also covers :: and ::1).
  if (AllZero(b, 10) && b[10] == 0xff && b[11] == 0xff) return NonPublicV4(b + 12);
  if (AllZero(b, 12)) return true;
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
    if (AllZero(b + 4, 8)) return NonPublicV4(b + 12);  // 64:ff9b::/96 NAT64
    return true;                                        // 64:ff9b:1::/48 local-use NAT64
  }
  if (b[0] == 0x20 && b[1] == 0x02) return NonPublicV4(b + 2);  // 2002::/16 6to4
  if ((b[0] & 0xfe) == 0xfc) return true;                       // fc00::/7 unique local
  if (b[0] == 0xfe && (b[1] & 0x80) == 0x80) return true;       // fe80::/10, fec0::/10
  if (b[0] == 0xff) return true;                                // ff00::/8 multicast
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return true;  // 2001:db8::/32
  if (b[0] == 0x01 && AllZero(b + 1, 7)) return true;  // 100::/64 discard-only
  return false;
}

}  // namespace

bool IsNonPublicAddress(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    return NonPublicV4(reinterpret_cast<const uint8_t*>(&in.sin_addr));
  }
  if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    return NonPublicV6(in6.sin6_addr.s6_addr);
  }
  return true;
}

std::optional<sockaddr_storage> ParseIpLiteral(const std::string& host, uint16_t port) {
  sockaddr_storage ss{};
  auto& in = reinterpret_cast<sockaddr_in&>(ss);
  if (inet_pton(AF_INET, host.c_str(), &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    return ss;
  }
  ss = {};
  auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    return ss;
  }
  return std::nullopt;
}

std::string AddressToString(const sockaddr_storage& addr) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  const void* raw = nullptr;
  if (addr.ss_family == AF_INET) {
    raw = &reinterpret_cast<const sockaddr_in&>(addr).sin_addr;
  } else if (addr.ss_family == AF_INET6) {
    raw = &reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr;
  } else {
    return "?";
  }
  if (inet_ntop(addr.ss_family, raw, buf.data(), buf.size()) == nullptr) return "?";
  return buf.data();
}

Result<std::vector<sockaddr_storage>> ResolveWithGetaddrinfo(const std::string& host,
                                                             uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return Status(Code::kUnavailable, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::vector<sockaddr_storage> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in&>(ss).sin_port = htons(port);
    } else if (ss.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6&>(ss).sin6_port = htons(port);
    } else {
      continue;
    }
    out.push_back(ss);
  }
  freeaddrinfo(res);
  return out;
}

}  // namespace mcpx::packages
