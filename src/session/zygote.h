// A zygote per policy: one Python (sandbox/kernel/mcpx_zygote.py) that imported the policy's
// preload modules once, in a sandbox with the outer layers only (jail.h SpawnRequest::zygote),
// and forks each new kernel. The fork enters the session's own namespaces, cgroup, limits,
// Landlock and seccomp before it runs a line of user code (jail/session_fork.h), so a session
// costs a fork and the pages it writes, not an interpreter and its imports.
//
//   Start() ──▶ zygote imports its preloads ──▶ ready() ──▶ Fork() per kernel, in milliseconds
//
// A zygote that ends (or never gets ready) says so through `on_exit`; the sessions it forked
// live on (its init lingers while they run). The factory (jailed_kernel.h) then starts kernels
// cold and starts another zygote.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "jail/jail.h"
#include "session/runtime.h"
#include "util/event_loop.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::session {

class Zygote {
 public:
  // Spawns the zygote and sends it the session plan; ready() turns true once it has imported
  // the preloads, and `on_ready` runs. `on_exit` runs from the event loop when it ends or fails
  // to get ready, with the reason; the Zygote may then be destroyed.
  static Result<std::unique_ptr<Zygote>> Start(EventLoop* loop, const KernelConfig& config,
                                               uint64_t serial, std::function<void()> on_ready,
                                               std::function<void(const std::string&)> on_exit);
  ~Zygote();
  Zygote(const Zygote&) = delete;
  Zygote& operator=(const Zygote&) = delete;

  bool ready() const { return ready_; }
  // True once the zygote's init has ended: no session of it is left.
  bool gone();

  // A new session's kernel, forked with the given ends of its control channel and output pipes
  // (fds 3, 1, 2 inside), in a new cgroup named `cgroup_name`. Returns once the kernel runs.
  Result<jail::Sandbox> Fork(const std::string& cgroup_name, int control, int out, int err);

 private:
  Zygote(EventLoop* loop, const KernelConfig& config) : loop_(loop), config_(config) {}
  void OnChannel(uint32_t events);
  void OnStderr();
  void Exited(const std::string& why);

  EventLoop* loop_;
  const KernelConfig& config_;
  jail::Sandbox sandbox_;
  jail::SessionPlan plan_;
  UniqueFd channel_;  // SOCK_SEQPACKET: the plan and fork requests out, `ready` in
  UniqueFd stderr_;   // its stdout and stderr; the tail goes into the exit reason
  std::string stderr_tail_;
  std::function<void()> on_ready_;
  std::function<void(const std::string&)> on_exit_;
  EventLoop::TimerId start_timer_ = 0;
  bool ready_ = false;
  bool exited_ = false;
};

}  // namespace mcpx::session
