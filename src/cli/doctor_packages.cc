#include "cli/doctor_packages.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>
#include <vector>

#include "packages/index_config.h"
#include "packages/proxy_rules.h"
#include "session/overlay.h"
#include "util/event_loop.h"
#include "util/io.h"
#include "util/unique_fd.h"

namespace mcpx::cli {
namespace {

constexpr int kConnectTimeoutMs = 3000;
constexpr size_t kMaxListed = 20;

// A TCP connect from the server's own network, as the proxy would make it.
PackageHostCheck CheckHost(const std::string& host, uint16_t port) {
  PackageHostCheck c;
  c.host = packages::HostPortString(host, port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list); rc != 0) {
    c.detail = std::string("no address (") + gai_strerror(rc) + ")";
    return c;
  }
  c.detail = "no address";
  for (addrinfo* a = list; a != nullptr && !c.reachable; a = a->ai_next) {
    UniqueFd fd(socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) continue;
    const int64_t start = EventLoop::NowMs();
    int err = 0;
    if (connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        const int r = PollUntil(fd.get(), POLLOUT, start + kConnectTimeoutMs);
        socklen_t len = sizeof(err);
        err = r <= 0 ? ETIMEDOUT
                     : (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? err : errno);
      }
    }
    if (err == 0) {
      c.reachable = true;
      c.detail = "connected in " + std::to_string(EventLoop::NowMs() - start) + " ms";
    } else {
      c.detail = std::string("cannot connect: ") + strerror(err);
    }
  }
  freeaddrinfo(list);
  return c;
}

}  // namespace

PackagesReport ProbePackages(const Options& opts) {
  namespace fs = std::filesystem;
  PackagesReport r;
  r.overlay = opts.state_dir + "/packages";
  std::error_code ec;
  r.ready = fs::exists(r.overlay + "/pyvenv.cfg", ec);
  if (auto site = session::OverlaySitePackages(r.overlay); site.ok()) {
    for (const auto& e : fs::directory_iterator(*site, ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 10 && name.ends_with(".dist-info")) {
        std::string nv = name.substr(0, name.size() - 10);
        if (const auto dash = nv.find('-'); dash != std::string::npos) nv[dash] = ' ';
        r.holds.push_back(nv);
      }
    }
    std::sort(r.holds.begin(), r.holds.end());
  }
  r.index = packages::IndexConfigToJson(opts.index);
  if (Status st = packages::ValidateIndexConfig(opts.index); !st.ok()) {
    r.config_error = st.message();
    return r;
  }
  r.sources = packages::DescribeSources(opts.index);
  if (packages::UsesNetwork(opts.index)) {
    // In parallel: a dead resolver takes seconds per name.
    std::vector<std::future<PackageHostCheck>> checks;
    for (const auto& h : packages::ProxyRulesFor(opts.index).hosts) {
      if (h.ports.empty()) continue;
      checks.push_back(std::async(std::launch::async, CheckHost, h.host, h.ports.front()));
    }
    for (auto& c : checks) r.hosts.push_back(c.get());
  }
  return r;
}

nlohmann::json PackagesReportToJson(const PackagesReport& r) {
  nlohmann::json hosts = nlohmann::json::array();
  for (const auto& h : r.hosts) {
    hosts.push_back({{"host", h.host}, {"reachable", h.reachable}, {"detail", h.detail}});
  }
  return {{"overlay", r.overlay},
          {"ready", r.ready},
          {"installed", r.holds},
          {"sources", r.sources},
          {"config_error",
           r.config_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.config_error)},
          {"index", r.index},
          {"proxy_hosts", std::move(hosts)}};
}

std::string PackagesReportText(const PackagesReport& r) {
  std::string out = "  packages: overlay " + r.overlay + " (" +
                    (r.ready ? std::to_string(r.holds.size()) + " installed"
                             : std::string("created at the first serve")) +
                    ")\n";
  if (!r.holds.empty()) {
    out += "    holds: ";
    for (size_t i = 0; i < r.holds.size() && i < kMaxListed; ++i) {
      out += (i == 0 ? "" : ", ") + r.holds[i];
    }
    if (r.holds.size() > kMaxListed) out += ", ...";
    out += "\n";
  }
  if (!r.config_error.empty()) return out + "    sources: INVALID (" + r.config_error + ")\n";
  out += "    sources: " + r.sources + "\n";
  if (r.hosts.empty()) return out + "    proxy: none (offline: the installer has no network)\n";
  bool unreachable = false;
  for (const auto& h : r.hosts) {
    out += "    proxy to " + h.host + ": " + (h.reachable ? "ok, " : "UNREACHABLE, ") + h.detail +
           "\n";
    unreachable = unreachable || !h.reachable;
  }
  if (unreachable) {
    out +=
        "    fix: install_package needs these hosts from this machine; or name a mirror "
        "(--index-url URL) or a wheelhouse (--find-links DIR)\n";
  }
  return out;
}

}  // namespace mcpx::cli
