#include "packages/index_config.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <optional>

#include "util/text.h"

namespace mcpx::packages {
namespace {

constexpr const char* kPyPiFiles = "files.pythonhosted.org";

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Letters, digits, '-' and '.' in non-empty labels (a name or an IPv4 literal). '_' too: some
// internal mirrors' names have it and pip accepts them.
bool IsHostName(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  size_t label = 0;
  for (char c : h) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_') {
      ++label;
    } else {
      return false;
    }
  }
  return label > 0 || h.size() > 1;  // a trailing dot (FQDN) is fine, "." alone is not
}

bool IsIpv6(std::string_view h) {
  in6_addr addr{};
  return inet_pton(AF_INET6, std::string(h).c_str(), &addr) == 1;
}

// "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" (the authority of a URL, or an --allow-host value).
// Messages say what is wrong with `hostport`; the caller names the flag.
struct HostPort {
  std::string host;  // lower-case; IPv6 without brackets
  std::optional<uint16_t> port;
};

Result<HostPort> ParseHostPort(std::string_view hostport) {
  HostPort out;
  std::string_view host = hostport;
  std::string_view port;
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return InvalidArgument("has '[' without ']'");
    host = hostport.substr(1, close - 1);
    const std::string_view rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return InvalidArgument("has " + Quote(rest) + " after ']'");
      port = rest.substr(1);
      has_port = true;
    }
    if (!IsIpv6(host)) {
      return InvalidArgument(Quote(host) + " in brackets is not an IPv6 address");
    }
  } else {
    const size_t colon = hostport.rfind(':');
    if (colon != std::string_view::npos) {
      host = hostport.substr(0, colon);
      port = hostport.substr(colon + 1);
      has_port = true;
    }
    if (host.find(':') != std::string_view::npos) {
      return InvalidArgument("IPv6 addresses go in brackets, e.g. [::1]:8080");
    }
    if (host.empty()) return InvalidArgument("has no host");
    if (!IsHostName(host)) {
      return InvalidArgument(Quote(host) +
                             " is not a host name (letters, digits, '-' and '.') or IP address");
    }
  }
  out.host = AsciiLower(host);
  if (has_port) {
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string_view::npos;
    const unsigned long n = digits ? std::stoul(std::string(port)) : 0;
    if (n < 1 || n > 65535) {
      return InvalidArgument("port " + Quote(port) + " is not a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(n);
  }
  return out;
}

void AddHost(ProxyRules& rules, const std::string& host, const std::vector<uint16_t>& ports,
             bool private_ok) {
  auto it = std::find_if(rules.hosts.begin(), rules.hosts.end(),
                         [&](const AllowedHost& h) { return h.host == host; });
  if (it == rules.hosts.end()) {
    rules.hosts.push_back(AllowedHost{host, {}, private_ok});
    it = rules.hosts.end() - 1;
  }
  it->private_ok = it->private_ok || private_ok;
  for (uint16_t p : ports) {
    if (std::find(it->ports.begin(), it->ports.end(), p) == it->ports.end()) {
      it->ports.push_back(p);
    }
  }
}

Status CheckWheelhouse(const std::string& dir) {
  if (dir.empty() || dir.front() != '/') {
    return InvalidArgument("--find-links " + Quote(dir) + " is not an absolute path");
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    // serve and doctor print message() alone, so the reason goes in it.
    if (err == ENOENT || err == ENOTDIR) {
      return Status(Code::kNotFound, "--find-links " + dir + ": no such directory", err);
    }
    return Status(Code::kInvalidArgument,
                  "--find-links " + dir + ": cannot read it: " + ErrnoName(err), err);
  }
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument("--find-links " + dir +
                           " is not a directory (it names a folder of wheels)");
  }
  return Status::Ok();
}

}  // namespace

Result<UrlParts> ParseIndexUrl(std::string_view url) {
  const std::string what = "index URL " + Quote(url);
  if (url.empty()) return InvalidArgument("the index URL is empty");
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return InvalidArgument(what + " holds whitespace, a control character or a non-ASCII byte");
    }
  }
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return InvalidArgument(what +
                           " is not a URL: index URLs are http://HOST/... or https://HOST/...");
  }
  UrlParts parts;
  parts.scheme = AsciiLower(url.substr(0, sep));
  if (parts.scheme != "http" && parts.scheme != "https") {
    return InvalidArgument(what + " has the scheme \"" + parts.scheme +
                           "\": index URLs are http:// or https://");
  }
  const std::string_view rest = url.substr(sep + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument(what + ": credentials in index URLs are not supported");
  }
  if (authority.empty()) return InvalidArgument(what + " has no host");
  auto hp = ParseHostPort(authority);
  if (!hp.ok()) return hp.status().Annotate(what);
  parts.host = std::move(hp->host);
  parts.explicit_port = hp->port.has_value();
  parts.port = hp->port.value_or(parts.scheme == "https" ? 443 : 80);
  return parts;
}

Status ValidateIndexConfig(const IndexConfig& c) {
  if (c.no_index) {
    std::string with;
    if (!c.index_url.empty()) with = "--index-url";
    if (!c.extra_index_urls.empty())
      with += std::string(with.empty() ? "" : " and ") + "--extra-index-url";
    if (!with.empty()) {
      return InvalidArgument("--no-index conflicts with " + with +
                             ": --no-index installs from --find-links folders only");
    }
    if (c.find_links.empty()) {
      return InvalidArgument("--no-index needs --find-links DIR (a folder of wheels)");
    }
  }
  if (!c.index_url.empty()) {
    if (auto u = ParseIndexUrl(c.index_url); !u.ok()) return u.status().Annotate("--index-url");
  }
  for (const std::string& e : c.extra_index_urls) {
    if (auto u = ParseIndexUrl(e); !u.ok()) return u.status().Annotate("--extra-index-url");
  }
  for (const std::string& dir : c.find_links) RETURN_IF_ERROR(CheckWheelhouse(dir));
  for (const std::string& h : c.allow_hosts) {
    if (auto hp = ParseHostPort(h); !hp.ok()) {
      return InvalidArgument("--allow-host " + Quote(h) + ": " + hp.status().message() +
                             " (HOST, HOST:PORT, [IPV6] or [IPV6]:PORT)");
    }
  }
  return Status::Ok();
}

bool UsesNetwork(const IndexConfig& c) {
  if (c.no_index) return false;
  const bool any_index = !c.index_url.empty() || !c.extra_index_urls.empty();
  return any_index || c.find_links.empty();
}

ProxyRules ProxyRulesFor(const IndexConfig& c) {
  ProxyRules rules;
  if (!UsesNetwork(c)) return rules;
  auto add_url = [&](const std::string& url) {
    if (auto u = ParseIndexUrl(url); u.ok()) AddHost(rules, u->host, {u->port}, true);
  };
  if (c.index_url.empty()) {
    AddHost(rules, "pypi.org", {443}, false);
    AddHost(rules, kPyPiFiles, {443}, false);
  } else {
    add_url(c.index_url);
  }
  for (const std::string& e : c.extra_index_urls) add_url(e);
  for (const std::string& h : c.allow_hosts) {
    auto hp = ParseHostPort(h);
    if (!hp.ok()) continue;
    AddHost(rules, hp->host,
            hp->port ? std::vector<uint16_t>{*hp->port} : std::vector<uint16_t>{443, 80}, true);
  }
  return rules;
}

std::vector<std::string> PipSourceArgs(const IndexConfig& c,
                                       const std::vector<std::string>& find_links_inside) {
  std::vector<std::string> args;
  if (UsesNetwork(c)) {
    const std::string index = c.index_url.empty() ? kPyPiIndex : c.index_url;
    args.insert(args.end(), {"--index-url", index});
    for (const std::string& e : c.extra_index_urls)
      args.insert(args.end(), {"--extra-index-url", e});
    std::vector<std::string> trusted;
    auto trust = [&](const std::string& url) {
      auto u = ParseIndexUrl(url);
      if (!u.ok() || u->scheme != "http") return;
      std::string h = HostPortString(
          u->host, u->explicit_port ? std::optional<uint16_t>(u->port) : std::nullopt);
      if (std::find(trusted.begin(), trusted.end(), h) == trusted.end()) trusted.push_back(h);
    };
    trust(index);
    for (const std::string& e : c.extra_index_urls) trust(e);
    for (std::string& h : trusted) args.insert(args.end(), {"--trusted-host", std::move(h)});
  } else {
    args.emplace_back("--no-index");
  }
  for (size_t i = 0; i < c.find_links.size(); ++i) {
    args.insert(args.end(), {"--find-links", i < find_links_inside.size() ? find_links_inside[i]
                                                                          : c.find_links[i]});
  }
  return args;
}

std::string HostPortString(const std::string& host, std::optional<uint16_t> port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port) h += ":" + std::to_string(*port);
  return h;
}

std::string DescribeSources(const IndexConfig& c) {
  std::string wheelhouses = Join(c.find_links, ", ");
  if (!wheelhouses.empty()) {
    wheelhouses = (c.find_links.size() == 1 ? "wheelhouse " : "wheelhouses ") + wheelhouses;
  }
  if (!UsesNetwork(c)) {
    return "offline: " + (wheelhouses.empty() ? std::string("no wheelhouse") : wheelhouses);
  }
  std::string s =
      "index " + (c.index_url.empty() ? std::string(kPyPiIndex) + " (default)" : c.index_url);
  if (!c.extra_index_urls.empty()) {
    s += " + " + std::to_string(c.extra_index_urls.size()) + " extra";
  }
  if (!wheelhouses.empty()) s += "; " + wheelhouses;
  return s;
}

nlohmann::json IndexConfigToJson(const IndexConfig& c) {
  const bool network = UsesNetwork(c);
  nlohmann::json index = nullptr;
  if (!c.index_url.empty()) {
    index = c.index_url;
  } else if (network) {
    index = kPyPiIndex;
  }
  nlohmann::json hosts = nlohmann::json::array();
  for (const AllowedHost& h : ProxyRulesFor(c).hosts) {
    for (uint16_t p : h.ports) hosts.push_back(HostPortString(h.host, p));
  }
  return {{"index_url", std::move(index)},  {"extra_index_urls", c.extra_index_urls},
          {"find_links", c.find_links},     {"allow_hosts", c.allow_hosts},
          {"no_index", c.no_index},         {"network", network},
          {"proxy_hosts", std::move(hosts)}};
}

}  // namespace mcpx::packages
