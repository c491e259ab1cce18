#include "session/zygote.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "session/overlay.h"
#include "util/io.h"
#include "util/text.h"

namespace mcpx::session {
namespace {

constexpr size_t kStderrTail = 1024;
constexpr size_t kMaxMessage = 4096;

// One SOCK_SEQPACKET message with `fds` attached (SCM_RIGHTS).
Status SendWithFds(int sock, std::string_view data, const std::vector<int>& fds) {
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  const ssize_t n = RetryEintr([&] { return sendmsg(sock, &msg, MSG_NOSIGNAL); });
  if (n != static_cast<ssize_t>(data.size())) {
    return ErrnoStatus(Code::kUnavailable, "cannot send the fork request to the zygote");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Zygote>> Zygote::Start(EventLoop* loop, const KernelConfig& config,
                                              uint64_t serial, std::function<void()> on_ready,
                                              std::function<void(const std::string&)> on_exit) {
  std::unique_ptr<Zygote> z(new Zygote(loop, config));
  z->on_ready_ = std::move(on_ready);
  z->on_exit_ = std::move(on_exit);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(Code::kInternal, "socketpair for the zygote's channel");
  }
  UniqueFd channel(sv[0]), channel_child(sv[1]);
  ASSIGN_OR_RETURN(auto err_pipe, MakePipe());

  const ServerPolicy& policy = *config.policy;
  jail::SpawnRequest req = KernelSpawnRequest(config, "mcpx_zygote.py", "MCPX_ZYGOTE_FD");
  req.extra_binds.push_back(jail::BindMount{.source = config.zygote_module,
                                            .target = kZygoteModuleInside,
                                            .writable = false,
                                            .optional = false,
                                            .reason = ""});
  req.fds = {{err_pipe.second.get(), 1}, {err_pipe.second.get(), 2}, {channel_child.get(), 3}};
  req.cgroup_name = "mcpx-" + std::to_string(getpid()) + "-z" + std::to_string(serial);
  req.zygote = true;
  ASSIGN_OR_RETURN(z->plan_, jail::BuildSessionPlan(req));
  ASSIGN_OR_RETURN(z->sandbox_, jail::Spawn(req));
  channel_child.reset();
  err_pipe.second.reset();
  z->channel_ = std::move(channel);
  z->stderr_ = std::move(err_pipe.first);

  // The plan first: the zygote reads it before it imports anything.
  const std::string plan = jail::EncodeSessionPlan(z->plan_);
  if (RetryEintr([&] { return send(z->channel_.get(), plan.data(), plan.size(), MSG_NOSIGNAL); }) !=
      static_cast<ssize_t>(plan.size())) {
    return ErrnoStatus(Code::kInternal, "cannot send the session plan to the zygote");
  }
  SetNonBlocking(z->channel_.get());
  SetNonBlocking(z->stderr_.get());
  Zygote* self = z.get();
  RETURN_IF_ERROR(loop->Add(z->channel_.get(), EPOLLIN | EPOLLRDHUP,
                            [self](uint32_t ev) { self->OnChannel(ev); }));
  RETURN_IF_ERROR(loop->Add(z->stderr_.get(), EPOLLIN, [self](uint32_t) { self->OnStderr(); }));
  z->start_timer_ = loop->AddTimer(std::chrono::seconds(policy.settings.start_timeout_s), [self] {
    self->start_timer_ = 0;
    if (!self->ready_) self->Exited("it was not ready within the policy's start_timeout_s");
  });
  return z;
}

Zygote::~Zygote() {
  loop_->CancelTimer(std::exchange(start_timer_, 0));
  if (channel_) loop_->Remove(channel_.get());
  if (stderr_) loop_->Remove(stderr_.get());
  sandbox_.Destroy();
}

bool Zygote::gone() {
  auto st = sandbox_.TryWait();
  return !st.ok() || st.value().has_value();
}

void Zygote::OnChannel(uint32_t events) {
  char buf[kMaxMessage];
  const ssize_t n = RetryEintr([&] { return recv(channel_.get(), buf, sizeof(buf), 0); });
  if (n > 0 && !ready_) {
    const auto msg = nlohmann::json::parse(std::string_view(buf, static_cast<size_t>(n)), nullptr,
                                           /*allow_exceptions=*/false);
    if (msg.is_object() && msg.value("type", "") == "ready") {
      ready_ = true;
      loop_->CancelTimer(std::exchange(start_timer_, 0));
      spdlog::info("zygote ready ({} preloaded in {} ms): new kernels are forked from it",
                   msg.value("preloaded", nlohmann::json::array()).dump(),
                   msg.value("preload_ms", 0.0));
      loop_->Post(on_ready_);
      return;
    }
  }
  if (n > 0) {
    Exited("it sent a message out of protocol");
  } else if (n == 0 || (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0) {
    OnStderr();
    Exited("it exited");
  }
}

void Zygote::OnStderr() {
  char buf[4096];
  for (;;) {
    const ssize_t n = RetryEintr([&] { return read(stderr_.get(), buf, sizeof(buf)); });
    if (n <= 0) {
      if (n == 0) loop_->Remove(stderr_.get());
      if (n == 0) stderr_.reset();
      return;
    }
    AppendTail(stderr_tail_, std::string_view(buf, static_cast<size_t>(n)), kStderrTail);
  }
}

void Zygote::Exited(const std::string& why) {
  if (exited_) return;
  exited_ = true;
  ready_ = false;
  loop_->CancelTimer(std::exchange(start_timer_, 0));
  loop_->Remove(channel_.get());
  channel_.reset();
  std::string reason = why;
  if (!stderr_tail_.empty()) reason += "; its stderr ended with: " + stderr_tail_;
  loop_->Post([cb = on_exit_, reason] { cb(reason); });
}

Result<jail::Sandbox> Zygote::Fork(const std::string& cgroup_name, int control, int out, int err) {
  if (!ready_) return FailedPrecondition("the zygote is not ready");
  std::unique_ptr<jail::Cgroup> cgroup;
  std::vector<UniqueFd> cgroup_files;
  if (config_.cgroups != nullptr) {
    const jail::Limits& l = config_.policy->limits();
    ASSIGN_OR_RETURN(cgroup,
                     config_.cgroups->Create(cgroup_name, {l.memory_bytes, l.pids, l.cpus}));
    cgroup_files = jail::OpenCgroupJoinFiles(*cgroup, config_.cgroups->version());
    if (cgroup_files.empty()) {
      return Internal("cannot open the files that join cgroup " + cgroup->name());
    }
  }
  int report[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, report) != 0) {
    return ErrnoStatus(Code::kResourceExhausted, "cannot create the session's setup socket");
  }
  UniqueFd report_parent(report[0]), report_child(report[1]);
  int note[2];
  if (pipe2(note, O_CLOEXEC | O_NONBLOCK) != 0) {
    return ErrnoStatus(Code::kResourceExhausted, "cannot create the session's init note pipe");
  }
  UniqueFd note_read(note[0]), note_write(note[1]);
  std::vector<int> fds = {report_child.get(), control, out, err, note_write.get()};
  for (const UniqueFd& fd : cgroup_files) fds.push_back(fd.get());
  if (Status st = SendWithFds(channel_.get(), R"({"op":"fork"})", fds); !st.ok()) {
    Exited("its channel is broken");
    return st;
  }
  report_child.reset();
  note_write.reset();
  cgroup_files.clear();
  return jail::AdoptSession(std::move(report_parent), std::move(note_read), std::move(cgroup),
                            plan_);
}

}  // namespace mcpx::session
