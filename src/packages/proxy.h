// The installer's only way out: an HTTP proxy on the server's event loop that forwards pip's
// requests, from the server's own network, to the operator's package hosts and nowhere else.
//
// The installer's jail has a network namespace with loopback only; its listening socket
// (127.0.0.1:PORT) is passed to Serve() and pip gets HTTPS_PROXY/HTTP_PROXY pointing there.
// Accepted: `CONNECT host:port` (TLS tunnels) and absolute-form `GET|HEAD http://host[:port]/...`
// (plain HTTP indexes). A host is reachable iff ProxyRules lists that exact name or IP literal
// with that port; a listed name without private_ok that resolves to any non-public address is
// refused as well (DNS rebinding onto the server's own services). The proxy connects only to the
// addresses it checked.
//
// Name lookups run on at most kMaxLookups worker threads (getaddrinfo blocks) and come back to
// the loop through an eventfd; everything else runs on the loop's thread. Bounded: kMaxClients
// connections, kBufferCap bytes per direction (a side whose peer is slow is not read), timeouts
// for the request head, the lookup and connect, and idle tunnels.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "packages/proxy_rules.h"
#include "util/event_loop.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::packages {

// Whether connecting to `addr` could reach something other than the public internet: loopback,
// unspecified, private (RFC 1918, fc00::/7), link-local, CGNAT (100.64/10), multicast, reserved
// and documentation ranges, and IPv6 forms embedding such an IPv4 address (mapped, compatible,
// NAT64, 6to4). Unknown families count as non-public.
bool IsNonPublicAddress(const sockaddr_storage& addr);

class PackageProxy {
 public:
  static constexpr size_t kMaxClients = 64;
  static constexpr size_t kMaxLookups = 4;
  static constexpr size_t kMaxHeadBytes = size_t{16} << 10;
  static constexpr size_t kBufferCap = size_t{256} << 10;
  static constexpr std::chrono::milliseconds kHeadTimeout{30'000};
  static constexpr std::chrono::milliseconds kLookupTimeout{30'000};
  static constexpr std::chrono::milliseconds kConnectTimeout{15'000};
  static constexpr std::chrono::milliseconds kIdleTimeout{120'000};

  // Resolves host:port to the addresses to try, in order (each with its port set). Runs on a
  // worker thread. The default calls getaddrinfo; tests substitute their own.
  using Resolver =
      std::function<Result<std::vector<sockaddr_storage>>(const std::string& host, uint16_t port)>;

  struct Stats {
    uint64_t connections = 0;  // client connections served (not counting turned_away)
    uint64_t allowed = 0;      // requests forwarded (host allowed and, if a name, resolved safely)
    uint64_t refused = 0;      // requests answered 403
    uint64_t turned_away = 0;  // connections closed at once because kMaxClients were open
    std::vector<std::string> refused_hosts;  // distinct, the first 16
    uint64_t failed = 0;       // allowed requests answered 502/504 (lookup or connect failed)
    std::string last_failure;  // e.g. "cannot resolve pypi.org"
  };

  PackageProxy(EventLoop* loop, ProxyRules rules, Resolver resolver = {});
  // Closes everything. Lookups still running finish on their detached threads and are dropped.
  ~PackageProxy();
  PackageProxy(const PackageProxy&) = delete;
  PackageProxy& operator=(const PackageProxy&) = delete;

  // Starts accepting on `listener` (a listening TCP socket; made non-blocking and CLOEXEC here).
  // Once only.
  Status Serve(UniqueFd listener);
  // Closes the listener and every connection. Idempotent; the proxy cannot serve again.
  void Stop();

  const Stats& stats() const { return stats_; }
  size_t open_connections() const { return conns_.size(); }

 private:
  struct Conn;
  struct Lookups;  // shared with the worker threads

  // Runs lookups from the queue until it is empty, on a detached thread.
  static void LookupWorker(const std::shared_ptr<Lookups>& lookups);

  void OnAcceptable();
  void OnClientEvent(uint64_t id, uint32_t events);
  void OnUpstreamEvent(uint64_t id, uint32_t events);
  void OnLookupsDone();
  void OnSweep();

  void ReadHead(Conn& c);
  void HandleHead(Conn& c, size_t head_len);
  void Refuse(Conn& c, const std::string& shown_host, std::string_view why);
  void Respond(Conn& c, int code, std::string_view reason, std::string_view body);
  void StartLookup(Conn& c);
  void ConnectNext(Conn& c);
  void OnConnected(Conn& c);
  void Relay(Conn& c);
  void Drain(Conn& c);
  // Closes the pair when both directions are done; a forwarded GET goes to Drain once the
  // response is through. (Sockets are edge-triggered: Relay itself retries a blocked side.)
  void Settle(Conn& c);
  void Close(uint64_t id);

  EventLoop* loop_;
  ProxyRules rules_;
  std::shared_ptr<Lookups> lookups_;
  UniqueFd listener_;
  bool served_ = false;
  bool stopped_ = false;
  bool accept_paused_ = false;  // out of fds: retried on the next sweep
  EventLoop::TimerId sweep_timer_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  Stats stats_;
};

}  // namespace mcpx::packages
