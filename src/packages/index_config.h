// Where packages come from: the operator's flags (--index-url, --extra-index-url, --find-links,
// --allow-host, --no-index), checked once at startup and turned into the installer's proxy
// allow-list (proxy_rules.h) and pip's source arguments. The model never chooses a source
// (requirement.h refuses URLs, paths and options).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "packages/proxy_rules.h"
#include "util/status.h"

namespace mcpx::packages {

inline constexpr const char* kPyPiIndex = "https://pypi.org/simple";

struct IndexConfig {
  std::string index_url;  // empty: PyPI (unless no_index or find_links-only)
  std::vector<std::string> extra_index_urls;
  std::vector<std::string> find_links;   // absolute host folders (wheelhouses)
  std::vector<std::string> allow_hosts;  // "HOST" or "HOST:PORT" ("[v6]" or "[v6]:PORT")
  bool no_index = false;
};

struct UrlParts {
  std::string scheme;          // "http" or "https", lower-case
  std::string host;            // lower-case name or IP literal (IPv6 without brackets)
  uint16_t port = 0;           // from the URL, else 443 for https / 80 for http
  bool explicit_port = false;  // the URL named the port (pip's --trusted-host matching needs it)
};

// An index URL: http or https, a host (IPv6 in brackets), optional port, no userinfo, no
// whitespace or control characters. Code::kInvalidArgument naming what is wrong.
Result<UrlParts> ParseIndexUrl(std::string_view url);

// Code::kInvalidArgument (kNotFound for a missing wheelhouse) naming the flag and the value.
Status ValidateIndexConfig(const IndexConfig& c);

// pip reaches a network index: false with --no-index, and with --find-links when no index URL is
// given (an offline wheelhouse needs no proxy).
bool UsesNetwork(const IndexConfig& c);

// The allow-list for the proxy (empty when !UsesNetwork): the host of index_url (or pypi.org:443
// and files.pythonhosted.org:443 with private_ok=false when it is empty), of every extra index
// URL, and every --allow-host (its port, else 443 and 80). Hosts named by the operator get
// private_ok=true. Hosts lower-cased; duplicates merged (ports united, private_ok if any says so).
// Expects a config that passed ValidateIndexConfig; unparsable entries are skipped.
ProxyRules ProxyRulesFor(const IndexConfig& c);

// pip's source arguments, one argv element each ("--index-url", "U", ...).
// `find_links_inside[i]` is where find_links[i] is mounted in the installer's jail (when the
// vector is shorter, the host path is used).
// Network: --index-url U (PyPI when empty), --extra-index-url U each, --trusted-host HOST[:PORT]
// for every http:// URL (pip refuses plain-HTTP indexes otherwise), --find-links P each.
// Offline: --no-index and --find-links P each.
std::vector<std::string> PipSourceArgs(const IndexConfig& c,
                                       const std::vector<std::string>& find_links_inside);

// "host", "host:port", "[v6]:port": how pip and people write a host.
std::string HostPortString(const std::string& host, std::optional<uint16_t> port);

// One line for messages and doctor, e.g. "index https://pypi.org/simple (default)",
// "index http://127.0.0.1:8080/simple + 1 extra; wheelhouse /srv/wheels",
// "offline: wheelhouse /srv/wheels".
std::string DescribeSources(const IndexConfig& c);

// {"index_url": configured URL, or PyPI when networked and unset, or null when offline and unset,
//  "extra_index_urls": [...], "find_links": [...], "allow_hosts": [...], "no_index": bool,
//  "network": bool, "proxy_hosts": ["pypi.org:443", ...]}
nlohmann::json IndexConfigToJson(const IndexConfig& c);

}  // namespace mcpx::packages
