// Which hosts the installer's proxy may reach: the operator's package hosts, never the model's.
//
// Built from the server's flags (--index-url, --extra-index-url, --allow-host; the default PyPI
// index brings its index and file hosts) by index_config.h; read by the proxy (proxy.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mcpx::packages {

struct AllowedHost {
  std::string host;             // lower-case name or IP literal (IPv6 without brackets)
  std::vector<uint16_t> ports;  // the ports the proxy may connect to on it
  // The operator's own URL or --allow-host named this host, so it may resolve to (or be) a
  // loopback, private or link-local address. False for the implicit PyPI hosts: a name that
  // resolves there is refused (DNS rebinding onto the host's own services).
  bool private_ok = false;
};

struct ProxyRules {
  std::vector<AllowedHost> hosts;
};

}  // namespace mcpx::packages
