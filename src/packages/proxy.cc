#include "packages/proxy.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "packages/proxy_address.h"
#include "packages/proxy_request.h"
#include "util/io.h"
#include "util/text.h"

namespace mcpx::packages {
namespace {

constexpr std::chrono::milliseconds kSweepEvery{1000};
// After an answer, how long the client gets to read it and close before we close on it.
constexpr std::chrono::milliseconds kDrainTimeout{2000};
constexpr size_t kDrainCap = size_t{1} << 20;
constexpr size_t kMaxRefusedHosts = 16;
constexpr size_t kAcceptBatch = 64;
constexpr size_t kReadChunk = size_t{64} << 10;
// Edge-triggered: Relay always works each socket until EAGAIN or a full buffer, and retries the
// blocked side itself once the other side made room, so no interest bookkeeping is needed and a
// hung-up socket cannot spin the loop.
constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

constexpr std::string_view kRefusal = "blocked by mcp-executor policy: ";
constexpr std::string_view kRefusalEnd = " is not an allowed package host\n";

socklen_t AddressLength(const sockaddr_storage& addr) {
  return addr.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

enum class Io { kProgress, kBlocked, kEof, kError };

// Reads what fits below kBufferCap.
Io ReadInto(int fd, std::string& buf) {
  if (buf.size() >= PackageProxy::kBufferCap) return Io::kBlocked;
  const size_t old = buf.size();
  const size_t want = std::min(kReadChunk, PackageProxy::kBufferCap - old);
  buf.resize(old + want);
  const ssize_t n = RetryEintr([&] { return recv(fd, buf.data() + old, want, 0); });
  buf.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
  if (n > 0) return Io::kProgress;
  if (n == 0) return Io::kEof;
  return errno == EAGAIN ? Io::kBlocked : Io::kError;
}

Io WriteFrom(int fd, std::string& buf) {
  if (buf.empty()) return Io::kBlocked;
  const ssize_t n = RetryEintr([&] { return send(fd, buf.data(), buf.size(), MSG_NOSIGNAL); });
  if (n > 0) {
    buf.erase(0, static_cast<size_t>(n));
    return Io::kProgress;
  }
  return n < 0 && (errno == EAGAIN) ? Io::kBlocked : Io::kError;
}

}  // namespace

struct PackageProxy::Lookups {
  struct Job {
    uint64_t conn_id;
    std::string host;
    uint16_t port;
  };
  struct Done {
    uint64_t conn_id;
    Result<std::vector<sockaddr_storage>> addrs;
  };

  Resolver resolver;
  UniqueFd event;  // written by a worker after each result; read on the loop
  std::mutex mu;
  std::deque<Job> queue;   // guarded by mu
  std::vector<Done> done;  // guarded by mu
  size_t workers = 0;      // guarded by mu
};

struct PackageProxy::Conn {
  enum class Phase { kHead, kLookup, kConnecting, kRelay, kDrain };

  uint64_t id = 0;
  Phase phase = Phase::kHead;
  UniqueFd client;
  UniqueFd upstream;
  std::string head;  // what the client sent while its head was incomplete
  ProxyRequest request;
  const AllowedHost* rule = nullptr;
  std::vector<sockaddr_storage> addrs;  // checked, tried in order
  size_t next_addr = 0;
  int connect_errno = 0;
  std::string to_upstream;
  std::string to_client;
  bool client_eof = false;  // nothing more to read from the client (EOF, or a forwarded GET)
  bool upstream_eof = false;
  bool upstream_shut = false;  // shutdown(SHUT_WR) sent to the upstream
  bool client_shut = false;
  size_t drained = 0;
  int64_t deadline_ms = 0;  // of the current phase; for kRelay, since the last traffic
};

PackageProxy::PackageProxy(EventLoop* loop, ProxyRules rules, Resolver resolver)
    : loop_(loop), rules_(std::move(rules)), lookups_(std::make_shared<Lookups>()) {
  lookups_->resolver = resolver ? std::move(resolver) : Resolver(ResolveWithGetaddrinfo);
  // One spelling per host so that matching is a plain comparison: names lower-case, IP literals
  // in inet_ntop's form (the parser canonicalizes the client's side the same way).
  for (AllowedHost& h : rules_.hosts) {
    h.host = AsciiLower(h.host);
    if (auto ip = ParseIpLiteral(h.host, 0)) h.host = AddressToString(*ip);
  }
}

PackageProxy::~PackageProxy() { Stop(); }

Status PackageProxy::Serve(UniqueFd listener) {
  if (served_ || stopped_) return FailedPrecondition("the package proxy serves once only");
  served_ = true;
  const int fd = listener.get();
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return ErrnoStatus(Code::kInternal, "package proxy: fcntl on the listener");
  }
  lookups_->event = UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!lookups_->event) return ErrnoStatus(Code::kInternal, "package proxy: eventfd");
  RETURN_IF_ERROR(
      loop_->Add(lookups_->event.get(), EPOLLIN, [this](uint32_t) { OnLookupsDone(); }));
  if (Status st = loop_->Add(fd, EPOLLIN, [this](uint32_t) { OnAcceptable(); }); !st.ok()) {
    loop_->Remove(lookups_->event.get());
    return st;
  }
  listener_ = std::move(listener);
  sweep_timer_ = loop_->AddTimer(kSweepEvery, [this] { OnSweep(); });
  return Status::Ok();
}

void PackageProxy::Stop() {
  if (stopped_) return;
  stopped_ = true;
  loop_->CancelTimer(sweep_timer_);
  if (listener_) loop_->Remove(listener_.get());
  listener_.reset();
  if (lookups_->event) loop_->Remove(lookups_->event.get());
  {
    // Workers still running finish their current lookup and find nothing more to do.
    std::lock_guard lock(lookups_->mu);
    lookups_->queue.clear();
    lookups_->done.clear();
  }
  while (!conns_.empty()) Close(conns_.begin()->first);
}

void PackageProxy::OnAcceptable() {
  for (size_t i = 0; i < kAcceptBatch && listener_; ++i) {
    UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EAGAIN) return;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // The pending connection stays queued; a level-triggered listener would spin on it.
        spdlog::warn("package proxy: accept: {}; paused until the next sweep", ErrnoName(err));
        accept_paused_ = true;
        (void)loop_->Modify(listener_.get(), 0);
        return;
      }
      spdlog::warn("package proxy: accept: {}", ErrnoName(err));
      return;
    }
    if (conns_.size() >= kMaxClients) {
      ++stats_.turned_away;
      continue;  // closed by fd's destructor
    }
    const uint64_t id = next_id_++;
    auto c = std::make_unique<Conn>();
    c->id = id;
    c->deadline_ms = EventLoop::NowMs() + kHeadTimeout.count();
    if (Status st =
            loop_->Add(fd.get(), kSocketEvents, [this, id](uint32_t ev) { OnClientEvent(id, ev); });
        !st.ok()) {
      spdlog::warn("package proxy: {}", st.ToString());
      continue;
    }
    c->client = std::move(fd);
    conns_.emplace(id, std::move(c));
    ++stats_.connections;
  }
}

void PackageProxy::OnClientEvent(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  switch (c.phase) {
    case Conn::Phase::kHead:
      return ReadHead(c);
    case Conn::Phase::kLookup:
    case Conn::Phase::kConnecting:
      // The client's further bytes wait in its socket until the tunnel is up.
      if ((events & (EPOLLERR | EPOLLHUP)) != 0) Close(id);
      return;
    case Conn::Phase::kRelay:
      return Relay(c);
    case Conn::Phase::kDrain:
      return Drain(c);
  }
}

void PackageProxy::OnUpstreamEvent(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.phase == Conn::Phase::kRelay) return Relay(c);
  if (c.phase != Conn::Phase::kConnecting) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c.upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) err = ECONNREFUSED;
  if (err != 0) {
    c.connect_errno = err;
    return ConnectNext(c);
  }
  if ((events & EPOLLOUT) != 0) OnConnected(c);
}

void PackageProxy::ReadHead(Conn& c) {
  for (;;) {
    const size_t old = c.head.size();
    const size_t want = kMaxHeadBytes + 1 - old;
    c.head.resize(old + want);
    const ssize_t n =
        RetryEintr([&] { return recv(c.client.get(), c.head.data() + old, want, 0); });
    c.head.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0) {
      if (errno == EAGAIN) return;
      return Close(c.id);
    }
    if (const auto end = FindHeadEnd(c.head)) {
      if (*end > kMaxHeadBytes) break;
      return HandleHead(c, *end);
    }
    if (c.head.size() > kMaxHeadBytes) break;
    if (n == 0) {
      if (c.head.empty()) return Close(c.id);
      return Respond(c, 400, ReasonPhrase(400), "incomplete request head\n");
    }
  }
  Respond(c, 431, ReasonPhrase(431), "request head over 16 KiB\n");
}

void PackageProxy::HandleHead(Conn& c, size_t head_len) {
  auto parsed = ParseRequestHead(std::string_view(c.head).substr(0, head_len));
  if (auto* refusal = std::get_if<HeadRefusal>(&parsed)) {
    return Respond(c, refusal->code, ReasonPhrase(refusal->code), refusal->message + "\n");
  }
  c.request = std::move(std::get<ProxyRequest>(parsed));
  const Authority& target = c.request.target;
  if (c.request.connect) {
    c.to_upstream = c.head.substr(head_len);  // early bytes of the tunnel, e.g. a TLS hello
  } else {
    // No bodies (the parser refused them): bytes after the head would be a second request.
    c.to_upstream = c.request.forward_head;
    c.client_eof = true;
  }
  c.head.clear();
  c.head.shrink_to_fit();

  for (const AllowedHost& h : rules_.hosts) {
    if (h.host == target.host) c.rule = &h;
  }
  if (c.rule == nullptr) return Refuse(c, target.shown, "");
  if (std::find(c.rule->ports.begin(), c.rule->ports.end(), target.port) == c.rule->ports.end()) {
    return Refuse(c, target.shown + ":" + std::to_string(target.port), "");
  }
  if (!target.ip_literal) return StartLookup(c);
  auto addr = ParseIpLiteral(target.host, target.port);
  if (!addr) return Respond(c, 400, ReasonPhrase(400), "malformed address\n");
  if (!c.rule->private_ok && IsNonPublicAddress(*addr)) {
    return Refuse(c, target.shown, "it is a non-public address");
  }
  ++stats_.allowed;
  c.addrs = {*addr};
  c.phase = Conn::Phase::kConnecting;
  c.deadline_ms = EventLoop::NowMs() + kConnectTimeout.count();
  ConnectNext(c);
}

void PackageProxy::Refuse(Conn& c, const std::string& shown_host, std::string_view why) {
  ++stats_.refused;
  auto& hosts = stats_.refused_hosts;
  if (hosts.size() < kMaxRefusedHosts &&
      std::find(hosts.begin(), hosts.end(), shown_host) == hosts.end()) {
    hosts.push_back(shown_host);
  }
  spdlog::warn("package proxy: refused {} ({})", shown_host,
               why.empty() ? std::string_view("not on the package host allow-list") : why);
  std::string body = std::string(kRefusal) + shown_host + std::string(kRefusalEnd);
  if (!why.empty()) body.append(why).append("\n");
  Respond(c, 403, ReasonPhrase(403), body);
}

void PackageProxy::Respond(Conn& c, int code, std::string_view reason, std::string_view body) {
  if (c.upstream) {
    loop_->Remove(c.upstream.get());
    c.upstream.reset();
  }
  // pip shows only the status line of a failed CONNECT ("Tunnel connection failed: 403 ..."), so
  // the reason phrase carries the body's first line too.
  std::string why(reason);
  const std::string_view line = body.substr(0, body.find('\n'));
  if (!line.empty()) why.append(" (").append(line).append(")");
  if (code == 502 || code == 504) {
    ++stats_.failed;
    stats_.last_failure = line;
  }
  c.to_client = ProxyResponse(code, why, body);
  c.phase = Conn::Phase::kDrain;
  c.deadline_ms = EventLoop::NowMs() + kDrainTimeout.count();
  Drain(c);
}

void PackageProxy::Drain(Conn& c) {
  // Writes the answer, then reads and discards until the client closes: closing with unread
  // bytes would send a reset, which can destroy the answer before the client reads it.
  for (;;) {
    const Io w = WriteFrom(c.client.get(), c.to_client);
    if (w == Io::kError) return Close(c.id);
    if (w == Io::kBlocked) break;
  }
  if (!c.to_client.empty()) return;
  if (!c.client_shut) {
    shutdown(c.client.get(), SHUT_WR);
    c.client_shut = true;
  }
  for (;;) {
    std::string sink;
    const Io r = ReadInto(c.client.get(), sink);
    if (r == Io::kBlocked) return;
    c.drained += sink.size();
    if (r != Io::kProgress || c.drained > kDrainCap) return Close(c.id);
  }
}

void PackageProxy::StartLookup(Conn& c) {
  c.phase = Conn::Phase::kLookup;
  c.deadline_ms = EventLoop::NowMs() + kLookupTimeout.count();
  bool spawn = false;
  {
    std::lock_guard lock(lookups_->mu);
    lookups_->queue.push_back({c.id, c.request.target.host, c.request.target.port});
    if (lookups_->workers < kMaxLookups) {
      ++lookups_->workers;
      spawn = true;
    }
  }
  if (!spawn) return;
  try {
    std::thread([lookups = lookups_] { LookupWorker(lookups); }).detach();
  } catch (const std::exception& e) {
    spdlog::warn("package proxy: cannot start a lookup thread: {}", e.what());
    std::lock_guard lock(lookups_->mu);
    --lookups_->workers;
    if (lookups_->workers > 0) return;  // a running worker will take the job
    lookups_->queue.clear();
    // Answered on the next sweep as a lookup timeout would be: no reentrancy here.
    c.deadline_ms = 0;
  }
}

void PackageProxy::LookupWorker(const std::shared_ptr<Lookups>& lookups) {
  Lookups& l = *lookups;
  for (;;) {
    Lookups::Job job;
    {
      std::lock_guard lock(l.mu);
      if (l.queue.empty()) {
        --l.workers;
        return;
      }
      job = std::move(l.queue.front());
      l.queue.pop_front();
    }
    Result<std::vector<sockaddr_storage>> addrs = Internal("lookup failed");
    try {
      addrs = l.resolver(job.host, job.port);
    } catch (const std::exception& e) {
      addrs = Internal(std::string("lookup failed: ") + e.what());
    }
    {
      std::lock_guard lock(l.mu);
      l.done.push_back({job.conn_id, std::move(addrs)});
    }
    const uint64_t one = 1;
    (void)!write(l.event.get(), &one, sizeof one);
  }
}

void PackageProxy::OnLookupsDone() {
  uint64_t count = 0;
  (void)!read(lookups_->event.get(), &count, sizeof count);
  std::vector<Lookups::Done> done;
  {
    std::lock_guard lock(lookups_->mu);
    done.swap(lookups_->done);
  }
  for (Lookups::Done& d : done) {
    auto it = conns_.find(d.conn_id);
    if (it == conns_.end() || it->second->phase != Conn::Phase::kLookup) continue;
    Conn& c = *it->second;
    const std::string& shown = c.request.target.shown;
    if (!d.addrs.ok() || d.addrs->empty()) {
      spdlog::warn("package proxy: cannot resolve {}: {}", shown,
                   d.addrs.ok() ? "no addresses" : d.addrs.status().ToString());
      Respond(c, 502, ReasonPhrase(502), "cannot resolve " + shown + "\n");
      continue;
    }
    if (!c.rule->private_ok) {
      auto bad = std::find_if(d.addrs->begin(), d.addrs->end(),
                              [](const sockaddr_storage& a) { return IsNonPublicAddress(a); });
      if (bad != d.addrs->end()) {
        Refuse(c, shown, "it resolves to " + AddressToString(*bad) + ", a non-public address");
        continue;
      }
    }
    ++stats_.allowed;
    c.addrs = std::move(*d.addrs);
    c.phase = Conn::Phase::kConnecting;
    c.deadline_ms = EventLoop::NowMs() + kConnectTimeout.count();
    ConnectNext(c);
  }
}

void PackageProxy::ConnectNext(Conn& c) {
  while (c.next_addr < c.addrs.size()) {
    const sockaddr_storage& addr = c.addrs[c.next_addr++];
    if (c.upstream) {
      loop_->Remove(c.upstream.get());
      c.upstream.reset();
    }
    UniqueFd fd(socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      c.connect_errno = errno;
      continue;
    }
    // Not retried on EINTR: the connect goes on in the background and a second call would fail.
    const int rc = connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), AddressLength(addr));
    if (rc != 0 && errno != EINPROGRESS) {
      c.connect_errno = errno;
      continue;
    }
    const uint64_t id = c.id;
    if (Status st = loop_->Add(fd.get(), kSocketEvents,
                               [this, id](uint32_t ev) { OnUpstreamEvent(id, ev); });
        !st.ok()) {
      c.connect_errno = st.err();
      continue;
    }
    c.upstream = std::move(fd);
    return;  // the loop reports the outcome, also when connect() already succeeded
  }
  const std::string where = c.request.target.shown + ":" + std::to_string(c.request.target.port);
  const std::string err = ErrnoName(c.connect_errno);
  spdlog::warn("package proxy: cannot connect to {}: {}", where, err);
  Respond(c, 502, ReasonPhrase(502), "cannot connect to " + where + ": " + err + "\n");
}

void PackageProxy::OnConnected(Conn& c) {
  c.phase = Conn::Phase::kRelay;
  c.deadline_ms = EventLoop::NowMs() + kIdleTimeout.count();
  if (c.request.connect) c.to_client = "HTTP/1.1 200 Connection established\r\n\r\n";
  Relay(c);
}

void PackageProxy::Relay(Conn& c) {
  struct Direction {
    int from;
    int to;
    std::string& buf;
    bool& from_eof;
    bool& to_shut;
    bool shut_when_done;
  };
  Direction dirs[2] = {
      // A forwarded GET's upstream is not half-closed: some servers take that as an abort.
      {c.client.get(), c.upstream.get(), c.to_upstream, c.client_eof, c.upstream_shut,
       c.request.connect},
      {c.upstream.get(), c.client.get(), c.to_client, c.upstream_eof, c.client_shut, true},
  };
  bool moved = false;
  for (bool progress = true; progress;) {
    progress = false;
    for (Direction& d : dirs) {
      if (!d.from_eof) {
        const Io r = ReadInto(d.from, d.buf);
        if (r == Io::kError) return Close(c.id);
        if (r == Io::kEof) d.from_eof = true;
        progress |= r == Io::kProgress || r == Io::kEof;
      }
      const Io w = WriteFrom(d.to, d.buf);
      if (w == Io::kError) return Close(c.id);
      progress |= w == Io::kProgress;
      if (d.from_eof && d.buf.empty() && !d.to_shut && d.shut_when_done) {
        shutdown(d.to, SHUT_WR);
        d.to_shut = true;
      }
    }
    moved |= progress;
  }
  if (moved) c.deadline_ms = EventLoop::NowMs() + kIdleTimeout.count();
  Settle(c);
}

void PackageProxy::Settle(Conn& c) {
  const bool upstream_done = c.upstream_eof && c.to_client.empty();
  if (!c.request.connect && upstream_done) {
    // The response is complete: the client learns it from the EOF, then goes (Drain).
    loop_->Remove(c.upstream.get());
    c.upstream.reset();
    c.phase = Conn::Phase::kDrain;
    c.deadline_ms = EventLoop::NowMs() + kDrainTimeout.count();
    return Drain(c);
  }
  if (upstream_done && c.client_eof && c.to_upstream.empty()) Close(c.id);
}

void PackageProxy::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.client) loop_->Remove(c.client.get());
  if (c.upstream) loop_->Remove(c.upstream.get());
  conns_.erase(it);
}

void PackageProxy::OnSweep() {
  sweep_timer_ = loop_->AddTimer(kSweepEvery, [this] { OnSweep(); });
  const int64_t now = EventLoop::NowMs();
  std::vector<uint64_t> expired;
  for (const auto& [id, c] : conns_) {
    if (c->deadline_ms <= now) expired.push_back(id);
  }
  for (uint64_t id : expired) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    switch (c.phase) {
      case Conn::Phase::kHead:
        Respond(c, 408, ReasonPhrase(408), "request head not received in time\n");
        break;
      case Conn::Phase::kLookup: {
        std::lock_guard lock(lookups_->mu);
        std::erase_if(lookups_->queue, [id](const Lookups::Job& j) { return j.conn_id == id; });
      }
        Respond(c, 504, ReasonPhrase(504), "lookup of " + c.request.target.shown + " timed out\n");
        break;
      case Conn::Phase::kConnecting:
        Respond(c, 504, ReasonPhrase(504),
                "connect to " + c.request.target.shown + ":" +
                    std::to_string(c.request.target.port) + " timed out\n");
        break;
      case Conn::Phase::kRelay:
      case Conn::Phase::kDrain:
        Close(id);
        break;
    }
  }
  if (accept_paused_ && listener_) {
    accept_paused_ = false;
    (void)loop_->Modify(listener_.get(), EPOLLIN);
    OnAcceptable();
  }
}

}  // namespace mcpx::packages
