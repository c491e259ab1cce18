#include "packages/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "packages/proxy_address.h"

namespace mcpx::packages {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kBlocked = "blocked by mcp-executor policy: ";

void SetTimeouts(int fd) {
  timeval tv{10, 0};  // a bug shows as a failure, not a hung test
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

UniqueFd ListenLocal(uint16_t* port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(fd.get(), 128), 0);
  socklen_t len = sizeof a;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  SetTimeouts(fd.get());
  return fd;
}

// A port on which nothing listens (bound, then closed again).
uint16_t ClosedPort() {
  uint16_t port = 0;
  ListenLocal(&port);
  return port;
}

UniqueFd ConnectLocal(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SetTimeouts(fd.get());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string ReadToEof(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string ReadHead(int fd) {
  std::string out;
  char ch;
  while (out.find("\r\n\r\n") == std::string::npos && recv(fd, &ch, 1, 0) == 1) out += ch;
  return out;
}

std::string ReadN(int fd, size_t n) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    const ssize_t got = recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// Sends `request` to the proxy and returns everything it answers until it closes.
std::string Exchange(uint16_t proxy_port, std::string request) {
  UniqueFd fd = ConnectLocal(proxy_port);
  SendAll(fd.get(), request);
  return ReadToEof(fd.get());
}

// One upstream connection, handled by `serve` on its own thread.
class Upstream {
 public:
  explicit Upstream(std::function<void(int)> serve) {
    listener_ = ListenLocal(&port_);
    thread_ = std::thread([this, serve = std::move(serve)] {
      UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      SetTimeouts(conn.get());
      serve(conn.get());
    });
  }
  ~Upstream() {
    shutdown(listener_.get(), SHUT_RDWR);  // ends an accept that never got a connection
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  UniqueFd listener_;
  uint16_t port_ = 0;
  std::thread thread_;
};

// Echoes until EOF; records what it got.
std::function<void(int)> Echo(std::string* got) {
  return [got](int fd) {
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
      got->append(buf, static_cast<size_t>(n));
      SendAll(fd, std::string_view(buf, static_cast<size_t>(n)));
    }
  };
}

std::string Refusal(std::string_view host) {
  return std::string(kBlocked) + std::string(host) + " is not an allowed package host\n";
}

std::string BodyOf(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

class PackageProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop).value();
  }

  // Names resolve through `names_` (name -> IP literal) unless a test brings its own resolver.
  void Start(std::vector<AllowedHost> hosts, PackageProxy::Resolver resolver = {}) {
    if (!resolver) {
      resolver = [names = names_](const std::string& host,
                                  uint16_t port) -> Result<std::vector<sockaddr_storage>> {
        auto it = names.find(host);
        if (it == names.end()) return NotFound("unknown test name " + host);
        return std::vector<sockaddr_storage>{*ParseIpLiteral(it->second, port)};
      };
    }
    proxy_ = std::make_unique<PackageProxy>(loop_.get(), ProxyRules{std::move(hosts)},
                                            std::move(resolver));
    ASSERT_TRUE(proxy_->Serve(ListenLocal(&port_)).ok());
  }

  // Runs the loop on this thread until `done`; clients run on others.
  template <typename Pred>
  void PumpUntil(Pred done) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the proxy did not get there";
      loop_->RunOnce(5ms);
    }
  }

  template <typename T>
  T Await(std::future<T>& f) {
    PumpUntil([&] { return f.wait_for(0s) == std::future_status::ready; });
    return f.get();
  }

  std::string Ask(std::string request) {
    auto f = std::async(std::launch::async, Exchange, port_, std::move(request));
    return Await(f);
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<PackageProxy> proxy_;
  std::map<std::string, std::string> names_ = {
      {"index.test", "127.0.0.1"}, {"private.test", "127.0.0.1"}, {"rebind.test", "10.0.0.1"}};
  uint16_t port_ = 0;
};

// Opens a CONNECT tunnel through the proxy, checks the 200, pings through it and half-closes.
std::string PingThroughTunnel(uint16_t proxy_port, std::string authority) {
  UniqueFd fd = ConnectLocal(proxy_port);
  SendAll(fd.get(), "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
  std::string head = ReadHead(fd.get());
  if (head != "HTTP/1.1 200 Connection established\r\n\r\n") return "head: " + head;
  SendAll(fd.get(), "ping");
  std::string echoed = ReadN(fd.get(), 4);
  shutdown(fd.get(), SHUT_WR);
  return echoed + ReadToEof(fd.get());
}

TEST_F(PackageProxyTest, ConnectToAnAllowedHostTunnelsBothWays) {
  std::string got;
  Upstream up(Echo(&got));
  Start({{"index.test", {up.port()}, true}});
  auto f = std::async(std::launch::async, PingThroughTunnel, port_,
                      "index.test:" + std::to_string(up.port()));
  EXPECT_EQ(Await(f), "ping");
  PumpUntil([&] { return proxy_->open_connections() == 0; });
  EXPECT_EQ(got, "ping");
  EXPECT_EQ(proxy_->stats().allowed, 1u);
  EXPECT_EQ(proxy_->stats().refused, 0u);
  EXPECT_EQ(proxy_->stats().connections, 1u);
}

// More than kBufferCap each way: the relay stops reading a side whose peer is behind and picks
// it up again once there is room.
TEST_F(PackageProxyTest, LargeTransfersGoThroughTheBoundedBuffers) {
  const size_t size = 3 * PackageProxy::kBufferCap + 12345;
  std::string pattern(size, '\0');
  for (size_t i = 0; i < size; ++i) pattern[i] = static_cast<char>('a' + i % 23);
  std::atomic<size_t> upstream_got = 0;
  Upstream up([&](int fd) {
    upstream_got = ReadToEof(fd).size();
    SendAll(fd, pattern);
  });
  Start({{"index.test", {up.port()}, true}});
  auto f = std::async(std::launch::async, [&] {
    UniqueFd fd = ConnectLocal(port_);
    SendAll(fd.get(), "CONNECT index.test:" + std::to_string(up.port()) + " HTTP/1.1\r\n\r\n");
    ReadHead(fd.get());
    SendAll(fd.get(), pattern);
    shutdown(fd.get(), SHUT_WR);
    return ReadToEof(fd.get());
  });
  EXPECT_TRUE(Await(f) == pattern);
  EXPECT_EQ(upstream_got.load(), size);
}

TEST_F(PackageProxyTest, HostNotOnTheListGetsTheRefusal) {
  Start({{"index.test", {443}, true}});
  const std::string r = Ask("CONNECT evil.example:443 HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 403 Forbidden (blocked by mcp-executor policy: ")) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(BodyOf(r), Refusal("evil.example"));
  Ask("CONNECT evil.example:443 HTTP/1.1\r\n\r\n");
  Ask("CONNECT other.example:443 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(proxy_->stats().refused, 3u);
  EXPECT_EQ(proxy_->stats().refused_hosts,
            (std::vector<std::string>{"evil.example", "other.example"}));
}

TEST_F(PackageProxyTest, AllowedHostOnAnUnlistedPortIsRefused) {
  Start({{"index.test", {443}, true}});
  EXPECT_EQ(BodyOf(Ask("CONNECT index.test:22 HTTP/1.1\r\n\r\n")), Refusal("index.test:22"));
  EXPECT_EQ(proxy_->stats().refused, 1u);
}

TEST_F(PackageProxyTest, IpLiteralsMustBeListed) {
  std::string got;
  Upstream up(Echo(&got));
  Start({{"127.0.0.1", {up.port()}, true}});
  const std::string other = "127.0.0.2:" + std::to_string(up.port());
  EXPECT_EQ(BodyOf(Ask("CONNECT " + other + " HTTP/1.1\r\n\r\n")), Refusal("127.0.0.2"));
  EXPECT_EQ(BodyOf(Ask("CONNECT [::1]:443 HTTP/1.1\r\n\r\n")), Refusal("[::1]"));
  auto f = std::async(std::launch::async, PingThroughTunnel, port_,
                      "127.0.0.1:" + std::to_string(up.port()));
  EXPECT_EQ(Await(f), "ping");
}

TEST_F(PackageProxyTest, ListedLiteralWithoutPrivateOkIsRefusedWhenNonPublic) {
  Start({{"127.0.0.1", {443}, false}});
  const std::string body = BodyOf(Ask("CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(body.starts_with(Refusal("127.0.0.1"))) << body;
}

TEST_F(PackageProxyTest, NameResolvingToANonPublicAddressIsRefusedWithoutPrivateOk) {
  Start({{"private.test", {443}, false}, {"rebind.test", {443}, false}});
  std::string body = BodyOf(Ask("CONNECT private.test:443 HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(body.starts_with(Refusal("private.test"))) << body;
  EXPECT_NE(body.find("127.0.0.1"), std::string::npos) << body;
  body = BodyOf(Ask("GET http://rebind.test:443/ HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(body.starts_with(Refusal("rebind.test"))) << body;
  EXPECT_EQ(proxy_->stats().refused, 2u);
  EXPECT_EQ(proxy_->stats().allowed, 0u);
}

TEST_F(PackageProxyTest, AbsoluteFormGetIsForwardedInOriginForm) {
  std::string upstream_head;
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  Upstream up([&](int fd) {
    upstream_head = ReadHead(fd);
    SendAll(fd, response);
  });
  Start({{"index.test", {up.port()}, true}});
  const std::string authority = "Index.Test:" + std::to_string(up.port());
  const std::string r =
      Ask("GET http://" + authority + "/simple/pkg/?x=1#frag HTTP/1.1\r\nHost: elsewhere\r\n" +
          "Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\nKeep-Alive: 300\r\n" +
          "Proxy-Authorization: Basic eDp5\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(r, response);
  EXPECT_EQ(upstream_head, "GET /simple/pkg/?x=1 HTTP/1.1\r\nHost: " + authority +
                               "\r\nAccept: */*\r\nConnection: close\r\n\r\n");
  PumpUntil([&] { return proxy_->open_connections() == 0; });
}

TEST_F(PackageProxyTest, OtherMethodsAndOriginFormGet405) {
  Start({{"index.test", {80}, true}});
  EXPECT_TRUE(Ask("POST http://index.test/ HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
  EXPECT_TRUE(
      Ask("GET /simple/ HTTP/1.1\r\nHost: index.test\r\n\r\n").starts_with("HTTP/1.1 405 "));
  EXPECT_EQ(proxy_->stats().refused, 0u);
}

TEST_F(PackageProxyTest, GarbageAndOversizedHeadsAreRefused) {
  Start({{"index.test", {80}, true}});
  EXPECT_TRUE(Ask("\x16\x03\x01 hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(Ask("CONNECT index.test HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400 "));
  const std::string big = "GET http://index.test/ HTTP/1.1\r\nX: " + std::string(20000, 'a');
  EXPECT_TRUE(Ask(big).starts_with("HTTP/1.1 431 ")) << Ask(big).substr(0, 40);
}

TEST_F(PackageProxyTest, UpstreamConnectRefusedIs502) {
  const uint16_t closed = ClosedPort();
  Start({{"index.test", {closed}, true}});
  const std::string r = Ask("CONNECT index.test:" + std::to_string(closed) + " HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 502 Bad Gateway (cannot connect to ")) << r;
}

TEST_F(PackageProxyTest, ASlowLookupDoesNotBlockTheLoop) {
  std::string got;
  Upstream up(Echo(&got));
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  const uint16_t closed = ClosedPort();
  auto resolver = [gate](const std::string& host,
                         uint16_t port) -> Result<std::vector<sockaddr_storage>> {
    if (host == "slow.test") gate.wait();
    return std::vector<sockaddr_storage>{*ParseIpLiteral("127.0.0.1", port)};
  };
  Start({{"slow.test", {closed}, true}, {"index.test", {up.port()}, true}}, resolver);
  auto slow = std::async(std::launch::async, Exchange, port_,
                         "CONNECT slow.test:" + std::to_string(closed) + " HTTP/1.1\r\n\r\n");
  auto fast = std::async(std::launch::async, PingThroughTunnel, port_,
                         "index.test:" + std::to_string(up.port()));
  EXPECT_EQ(Await(fast), "ping");
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout);
  release.set_value();
  EXPECT_TRUE(Await(slow).starts_with("HTTP/1.1 502 "));
}

TEST_F(PackageProxyTest, ClientsOverTheLimitAreTurnedAway) {
  Start({{"index.test", {443}, true}});
  std::vector<UniqueFd> held;
  auto opened = std::async(std::launch::async, [&] {
    for (size_t i = 0; i < PackageProxy::kMaxClients; ++i) held.push_back(ConnectLocal(port_));
  });
  Await(opened);
  PumpUntil([&] { return proxy_->open_connections() == PackageProxy::kMaxClients; });
  auto extra = std::async(std::launch::async, [&] {
    UniqueFd fd = ConnectLocal(port_);
    char ch;
    return recv(fd.get(), &ch, 1, 0);
  });
  EXPECT_LE(Await(extra), 0);
  EXPECT_EQ(proxy_->stats().turned_away, 1u);
  EXPECT_EQ(proxy_->stats().connections, PackageProxy::kMaxClients);
  held.clear();
  PumpUntil([&] { return proxy_->open_connections() == 0; });
}

TEST_F(PackageProxyTest, StopClosesEverythingAndIsIdempotent) {
  std::string got;
  Upstream up(Echo(&got));
  Start({{"index.test", {up.port()}, true}});
  UniqueFd idle = ConnectLocal(port_);
  std::atomic<bool> established = false;
  auto tunnel = std::async(std::launch::async, [&] {
    UniqueFd fd = ConnectLocal(port_);
    SendAll(fd.get(), "CONNECT index.test:" + std::to_string(up.port()) + " HTTP/1.1\r\n\r\n");
    const std::string head = ReadHead(fd.get());
    established = true;
    return head + ReadToEof(fd.get());  // EOF once the proxy stops
  });
  PumpUntil([&] { return established && proxy_->open_connections() == 2; });
  proxy_->Stop();
  EXPECT_EQ(proxy_->open_connections(), 0u);
  EXPECT_EQ(tunnel.get().substr(0, 12), "HTTP/1.1 200");
  char ch;
  EXPECT_LE(recv(idle.get(), &ch, 1, 0), 0);
  proxy_->Stop();
  EXPECT_FALSE(proxy_->Serve(ListenLocal(&port_)).ok());
}

TEST(IsNonPublicAddressTest, Ipv4AndIpv6Table) {
  const std::vector<std::pair<std::string, bool>> table = {
      {"127.0.0.1", true},
      {"0.0.0.0", true},
      {"10.1.2.3", true},
      {"172.16.0.1", true},
      {"172.31.255.255", true},
      {"172.32.0.1", false},
      {"192.168.1.1", true},
      {"100.64.0.1", true},
      {"100.128.0.1", false},
      {"169.254.169.254", true},
      {"192.0.0.8", true},
      {"192.0.2.1", true},
      {"198.18.0.1", true},
      {"198.19.255.1", true},
      {"198.51.100.7", true},
      {"203.0.113.9", true},
      {"224.0.0.1", true},
      {"240.0.0.1", true},
      {"255.255.255.255", true},
      {"151.101.0.223", false},
      {"8.8.8.8", false},
      {"::1", true},
      {"::", true},
      {"fc00::1", true},
      {"fd12::1", true},
      {"fe80::1", true},
      {"ff02::1", true},
      {"2001:db8::1", true},
      {"::ffff:127.0.0.1", true},
      {"::ffff:8.8.8.8", false},
      {"::10.0.0.1", true},
      {"64:ff9b::10.0.0.1", true},
      {"64:ff9b::8.8.8.8", false},
      {"2002:0a00:0001::1", true},
      {"2002:0808:0808::1", false},
      {"2a04:4e42::223", false},
      {"2606:4700::1111", false},
  };
  for (const auto& [text, non_public] : table) {
    auto addr = ParseIpLiteral(text, 443);
    ASSERT_TRUE(addr.has_value()) << text;
    EXPECT_EQ(IsNonPublicAddress(*addr), non_public) << text;
  }
  sockaddr_storage unix_family{};
  unix_family.ss_family = AF_UNIX;
  EXPECT_TRUE(IsNonPublicAddress(unix_family));
}

}  // namespace
}  // namespace mcpx::packages
