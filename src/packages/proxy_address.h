// Socket addresses for the package proxy: IP literals, printing, and the public/non-public
// classification (IsNonPublicAddress, declared in proxy.h, is defined in proxy_address.cc).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace mcpx::packages {

// The address `host` spells (dotted IPv4, or IPv6 without brackets) with `port`; nullopt for a
// name.
std::optional<sockaddr_storage> ParseIpLiteral(const std::string& host, uint16_t port);

// "1.2.3.4" or "2001:db8::1"; "?" for families other than IPv4 and IPv6.
std::string AddressToString(const sockaddr_storage& addr);

// The proxy's default resolver: getaddrinfo (blocking; run on a worker thread), each address
// with `port` set.
Result<std::vector<sockaddr_storage>> ResolveWithGetaddrinfo(const std::string& host,
                                                             uint16_t port);

}  // namespace mcpx::packages
