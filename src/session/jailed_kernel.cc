#include "session/jailed_kernel.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "session/overlay.h"
#include "util/io.h"
#include "util/text.h"
#include "util/utf8.h"

namespace mcpx::session {
namespace {}  // namespace

Result<std::unique_ptr<JailedKernel>> JailedKernel::Start(EventLoop* loop,
                                                          const KernelConfig& config,
                                                          uint64_t serial, Zygote* zygote) {
  std::unique_ptr<JailedKernel> k(
      new JailedKernel(loop, serial, FrameLimitsFor(config.policy->settings)));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(Code::kInternal, "socketpair for the kernel control channel");
  }
  UniqueFd control(sv[0]), control_child(sv[1]);
  ASSIGN_OR_RETURN(auto out_pipe, MakePipe());
  ASSIGN_OR_RETURN(auto err_pipe, MakePipe());

  const auto& policy = *config.policy;
  const std::string cgroup_name =
      "mcpx-" + std::to_string(getpid()) + "-k" + std::to_string(serial);
  if (zygote != nullptr) {
    ASSIGN_OR_RETURN(k->sandbox_, zygote->Fork(cgroup_name, control_child.get(),
                                               out_pipe.second.get(), err_pipe.second.get()));
  } else {
    jail::SpawnRequest req = KernelSpawnRequest(config, "mcpx_kernel.py", "MCPX_KERNEL_FD");
    req.fds = {{out_pipe.second.get(), 1}, {err_pipe.second.get(), 2}, {control_child.get(), 3}};
    req.cgroup_name = cgroup_name;
    ASSIGN_OR_RETURN(k->sandbox_, jail::Spawn(req));
  }
  k->start_timeout_s_ = policy.settings.start_timeout_s;
  // The child's ends now live in the sandbox; closing ours lets EOF/HUP mean "gone".
  control_child.reset();
  out_pipe.second.reset();
  err_pipe.second.reset();

  k->control_ = std::move(control);
  k->out_[1] = std::move(out_pipe.first);
  k->out_[2] = std::move(err_pipe.first);
  SetNonBlocking(k->control_.get());
  SetNonBlocking(k->out_[1].get());
  SetNonBlocking(k->out_[2].get());

  JailedKernel* self = k.get();
  RETURN_IF_ERROR(loop->Add(k->control_.get(), EPOLLIN | EPOLLRDHUP,
                            [self](uint32_t ev) { self->OnControl(ev); }));
  RETURN_IF_ERROR(
      loop->Add(k->out_[1].get(), EPOLLIN, [self](uint32_t ev) { self->OnPipe(1, ev); }));
  RETURN_IF_ERROR(
      loop->Add(k->out_[2].get(), EPOLLIN, [self](uint32_t ev) { self->OnPipe(2, ev); }));
  RETURN_IF_ERROR(
      loop->Add(k->sandbox_.pidfd.get(), EPOLLIN, [self](uint32_t) { self->OnPidfd(); }));
  k->start_timer_ =
      loop->AddTimer(std::chrono::seconds(k->start_timeout_s_), [self] { self->OnStartTimeout(); });
  return k;
}

JailedKernel::~JailedKernel() {
  if (alive_) sandbox_.Kill();
  Close();
  sandbox_.Destroy();
}

void JailedKernel::OnStartTimeout() {
  start_timer_ = 0;
  if (ready_ || !alive_) return;
  start_error_ = "it was not ready within the policy's start_timeout_s of " +
                 std::to_string(start_timeout_s_) + " s (importing its preload modules)";
  spdlog::debug("kernel {}: {}; stopping it", serial_, start_error_);
  Kill();
}

std::string JailedKernel::StartFailure(const jail::ExitStatus& exit) const {
  if (ready_) return "";
  std::string why =
      !start_error_.empty() ? start_error_
      : !protocol_error_.empty()
          ? protocol_error_
          : "it exited with status " + std::to_string(exit.ShellCode()) + " before it was ready";
  // The last two lines: that is where Python says what failed.
  std::string_view tail = startup_stderr_;
  while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.back()))) {
    tail.remove_suffix(1);
  }
  size_t from = tail.size();
  for (int lines = 0; lines < 2 && from > 0; ++lines) {
    const size_t nl = tail.rfind('\n', from - 1);
    from = nl == std::string_view::npos ? 0 : nl;
  }
  tail.remove_prefix(Utf8SafeStart(tail, from));
  while (!tail.empty() && tail.front() == '\n') tail.remove_prefix(1);
  if (!tail.empty()) why += "; its stderr ended with: " + std::string(tail);
  return why;
}

void JailedKernel::KeepStartupStderr(std::string_view data) {
  AppendTail(startup_stderr_, data, kStartupStderrBytes);
}

void JailedKernel::Close() {
  loop_->CancelTimer(std::exchange(start_timer_, 0));  // an unknown id (0) is a no-op
  for (int i = 1; i <= 2; ++i) {
    if (out_[i]) loop_->Remove(out_[i].get());
  }
  if (control_) loop_->Remove(control_.get());
  if (sandbox_.pidfd) loop_->Remove(sandbox_.pidfd.get());
}

Status JailedKernel::Send(const nlohmann::json& message) {
  if (!alive_ || !control_) return Status(Code::kUnavailable, "the kernel is not running");
  pending_write_ += EncodeFrame(message);
  FlushWrites();
  return Status::Ok();
}

void JailedKernel::FlushWrites() {
  while (!pending_write_.empty() && control_) {
    const ssize_t n = RetryEintr([&] {
      return ::send(control_.get(), pending_write_.data(), pending_write_.size(),
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    });
    if (n > 0) {
      pending_write_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      (void)loop_->Modify(control_.get(), EPOLLIN | EPOLLRDHUP | EPOLLOUT);
      return;
    }
    spdlog::warn("kernel {}: control channel write failed: {}", serial_,
                 ErrnoStatus(Code::kInternal, "send").ToString());
    pending_write_.clear();
    return;
  }
  if (control_) (void)loop_->Modify(control_.get(), EPOLLIN | EPOLLRDHUP);
}

void JailedKernel::OnControl(uint32_t events) {
  if ((events & EPOLLOUT) != 0) FlushWrites();
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) == 0) return;
  // One bounded read per wake-up, decoded before the next: a sandbox that floods its channel
  // gets its turn like every other fd and timer (epoll is level-triggered and calls again), and
  // never makes the buffer hold more than one frame and one read.
  ReadControl(1);
}

void JailedKernel::ReadControl(int max_reads) {
  char buf[kReadChunk];
  for (int reads = 0; reads < max_reads && control_;) {
    const ssize_t n = RetryEintr([&] { return ::read(control_.get(), buf, sizeof buf); });
    ++reads;
    if (n > 0) {
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
      if (!DecodeFrames()) return;
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    // EOF or error: the kernel is gone or going; the pidfd reports the end.
    loop_->Remove(control_.get());
    control_.reset();
  }
}

bool JailedKernel::DecodeFrames() {
  for (;;) {
    auto next = decoder_.Next();
    if (!next.ok()) {
      ProtocolViolation(next.status().message());
      return false;
    }
    if (!next->has_value()) return true;
    // Frames come from code we do not trust (user code can write fd 3): the parse is the one
    // boundary they cross, and a frame it refuses is the kernel's end, never the server's.
    auto frame = ParseKernelFrame(**next, limits_);
    if (!frame.ok()) {
      ProtocolViolation(frame.status().message());
      return false;
    }
    if (frame->kind == KernelFrame::Kind::kReady && !ready_) {
      ready_ = true;
      startup_stderr_.clear();
      startup_stderr_.shrink_to_fit();
      loop_->CancelTimer(std::exchange(start_timer_, 0));
    }
    if (cb_.on_message) cb_.on_message(*frame);
    if (!alive_) return false;
  }
}

void JailedKernel::ReadPipe(int stream, size_t budget) {
  char buf[kReadChunk];
  size_t taken = 0;
  while (out_[stream] && taken < budget) {
    const ssize_t n = RetryEintr([&] { return ::read(out_[stream].get(), buf, sizeof buf); });
    if (n > 0) {
      taken += static_cast<size_t>(n);
      if (stream == 2 && !ready_) KeepStartupStderr(std::string_view(buf, static_cast<size_t>(n)));
      if (cb_.on_output) cb_.on_output(stream, std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    loop_->Remove(out_[stream].get());
    out_[stream].reset();
  }
}

// Like the control channel, a pipe gets a bounded turn per wake-up: a writer that keeps it full
// (`yes` in a background process) must not keep the loop here.
void JailedKernel::OnPipe(int stream, uint32_t) { ReadPipe(stream, kReadChunk * 4); }

// What the cell flushed before its reply is at most what the pipes hold (64 KiB each by default,
// up to the 1 MiB pipe-max-size if user code enlarged them); a background writer adds more
// forever, so the drain stops past that.
void JailedKernel::DrainOutput() {
  ReadPipe(1, kDrainBudget);
  ReadPipe(2, kDrainBudget);
}

void JailedKernel::OnPidfd() {
  auto st = sandbox_.TryWait();
  if (st.ok() && !st->has_value()) return;  // spurious
  const jail::ExitStatus exit = st.ok() ? **st : jail::ExitStatus{0, SIGKILL};
  alive_ = false;
  // Whatever the kernel wrote before dying belongs to the running cell.
  DrainOutput();
  // Frames the kernel wrote before it died (its reply) are still in the socket; its writers are
  // gone with the PID namespace, so this ends.
  ReadControl(kDeathReads);
  Close();
  if (!exit_reported_) {
    exit_reported_ = true;
    if (cb_.on_exit) cb_.on_exit(exit);
  }
}

Status JailedKernel::Interrupt() {
  if (!alive_) return Status(Code::kUnavailable, "the kernel is not running");
  return sandbox_.Signal(SIGINT);
}

void JailedKernel::Kill() {
  if (alive_) sandbox_.Kill();
}

void JailedKernel::ProtocolViolation(const std::string& what) {
  if (protocol_error_.empty()) {
    protocol_error_ = "the kernel sent " + what +
                      " on its control channel (user code that writes fd 3 ends its own kernel)";
  }
  spdlog::error("kernel {}: {}; stopping it", serial_, protocol_error_);
  Kill();
}

Result<jail::CgroupUsage> JailedKernel::Usage() const {
  if (!sandbox_.cgroup) return FailedPrecondition("no cgroup for this kernel");
  return sandbox_.cgroup->Usage();
}

void JailedKernelFactory::Prepare(std::function<void()> done) {
  auto prep = StartMplCachePrep(config_);
  if (!prep.ok()) {
    spdlog::warn("{}; the first plot of each kernel will be slow", prep.status().ToString());
  } else if (*prep > 0) {
    return WaitForCachePrep(*prep, [this, done = std::move(done)] {
      after_zygote_ = done;
      StartZygote();
    });
  }
  after_zygote_ = std::move(done);
  StartZygote();
}

void JailedKernelFactory::ZygoteSettled() {
  if (auto then = std::exchange(after_zygote_, nullptr)) loop_->Post(std::move(then));
}

void JailedKernelFactory::StartZygote() {
  if (shut_down_ || zygote_ || !config_.policy->settings.zygote) return ZygoteSettled();
  if (config_.zygote_module.empty()) {
    spdlog::info("no zygote module was built (python3-dev missing?): every kernel starts cold");
    return ZygoteSettled();
  }
  auto z = Zygote::Start(
      loop_, config_, ++zygote_serial_,
      [this] {
        zygote_failures_ = 0;
        ZygoteSettled();
      },
      [this](const std::string& why) { OnZygoteExit(why); });
  if (!z.ok()) return OnZygoteExit("could not start: " + z.status().ToString());
  zygote_ = std::move(z).value();
}

void JailedKernelFactory::OnZygoteExit(const std::string& why) {
  ZygoteSettled();
  // Its sessions live on; it is destroyed once they are gone.
  if (zygote_) retired_.push_back(std::move(zygote_));
  ++zygote_failures_;
  if (shut_down_) return;
  if (zygote_failures_ > kZygoteRetries) {
    spdlog::warn("the zygote {}; {} zygotes in a row failed, so every kernel starts cold from now",
                 why, zygote_failures_);
    return;
  }
  spdlog::warn("the zygote {}; new kernels start cold until a new one is ready", why);
  zygote_timer_ = loop_->AddTimer(std::chrono::seconds(zygote_failures_), [this] {
    zygote_timer_ = 0;
    StartZygote();
  });
}

void JailedKernelFactory::WaitForCachePrep(pid_t pid, std::function<void()> done) {
  cache_prep_timer_ = 0;
  cache_prep_pid_ = pid;
  int wstatus = 0;
  const pid_t r = waitpid(pid, &wstatus, WNOHANG);
  if (r == 0) {
    cache_prep_timer_ = loop_->AddTimer(std::chrono::milliseconds(100),
                                        [this, pid, done] { WaitForCachePrep(pid, done); });
    return;
  }
  cache_prep_pid_ = -1;
  if (r < 0 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    spdlog::warn(
        "preparing the matplotlib font cache failed; the first plot of each kernel "
        "will be slow");
  }
  done();
}

void JailedKernelFactory::Shutdown() {
  shut_down_ = true;
  loop_->CancelTimer(std::exchange(cache_prep_timer_, 0));
  loop_->CancelTimer(std::exchange(zygote_timer_, 0));
  zygote_.reset();
  retired_.clear();
  if (cache_prep_pid_ > 0) {
    kill(cache_prep_pid_, SIGKILL);
    waitpid(cache_prep_pid_, nullptr, 0);
    cache_prep_pid_ = -1;
  }
}

Result<std::unique_ptr<Kernel>> JailedKernelFactory::Start(uint64_t serial) {
  std::erase_if(retired_, [](const std::unique_ptr<Zygote>& z) { return z->gone(); });
  if (zygote_ && zygote_->ready()) {
    const int64_t started = EventLoop::NowMs();
    auto forked = JailedKernel::Start(loop_, config_, serial, zygote_.get());
    if (forked.ok()) {
      spdlog::debug("kernel {} forked from the zygote in {} ms", serial,
                    EventLoop::NowMs() - started);
      return std::unique_ptr<Kernel>(std::move(forked).value());
    }
    spdlog::warn("kernel {}: forking it from the zygote failed ({}); starting it cold", serial,
                 forked.status().ToString());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<JailedKernel> k, JailedKernel::Start(loop_, config_, serial));
  return std::unique_ptr<Kernel>(std::move(k));
}

}  // namespace mcpx::session
