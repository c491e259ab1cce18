// Named sessions, each one kernel in its own jail and cgroup, plus a warm pool of kernels that
// have already imported the policy's preload modules.
//
// Calls in one session run in order; calls in different sessions run at the same time; nothing
// here blocks the event loop, so ping, file tools and cancellations are served while code runs.
// A timeout or a cancellation sends SIGINT (KeyboardInterrupt, state kept); a kernel that does
// not come back within the policy's grace period is killed, and the next call in that session
// gets a fresh kernel and is told the state was lost.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "session/kernel.h"
#include "tools/tool.h"
#include "util/event_loop.h"
#include "workspace/disk_budget.h"
#include "workspace/workspace.h"

namespace mcpx::session {

struct ManagerOptions {
  size_t warm_kernels = 1;  // kernels kept ready before they are asked for
};

class SessionManager {
 public:
  SessionManager(EventLoop* loop, KernelConfig config, std::shared_ptr<workspace::Workspace> ws,
                 ManagerOptions options);
  ~SessionManager();

  // Starts the warm pool (in the background).
  void Start();
  // Kills every kernel and removes every cgroup; pending calls get a "server shutting down" error.
  void Shutdown();

  // execute_python: code, session, timeout_seconds (already validated by the tool).
  void Execute(tools::ToolCallPtr call, std::string session, std::string code,
               std::optional<double> timeout_seconds);
  nlohmann::json ListSessions();
  // Kills the session's kernel; returns whether it existed.
  bool Reset(const std::string& session);

  const jail::Policy& policy() const { return *config_.policy; }

 private:
  struct Execution;
  struct Session;

  Result<std::unique_ptr<Kernel>> NewKernel();
  std::unique_ptr<Kernel> TakeWarmKernel();
  void RefillPool();
  void WaitForCachePrep(pid_t pid);
  void Retire(std::unique_ptr<Kernel> kernel);

  Status EnsureKernel(Session& s);
  void Pump(Session& s);  // starts the next queued execution when the kernel is ready and idle
  void Begin(Session& s);
  void OnKernelMessage(const std::string& session, const KernelFrame& msg);
  void OnKernelOutput(const std::string& session, int stream, std::string_view data);
  void OnKernelExit(const std::string& session, uint64_t serial, jail::ExitStatus exit);
  void OnTimeout(const std::string& session, uint64_t exec_id);
  void OnCancel(const std::string& session, uint64_t exec_id);
  void Interrupt(Session& s, const std::string& status, const std::string& why);
  void Tick(const std::string& session, uint64_t exec_id);
  void Complete(Session& s, const KernelFrame* reply, std::optional<jail::ExitStatus> exit);
  void FinishQueuedWithError(Session& s, const std::string& message);
  void SweepIdle();
  std::string KillReason(Session& s, const Execution& e,
                         const std::optional<jail::ExitStatus>& exit) const;

  EventLoop* loop_;
  KernelConfig config_;
  std::shared_ptr<workspace::Workspace> ws_;
  std::unique_ptr<workspace::DiskBudget> disk_;  // null if the workspace cannot be measured
  ManagerOptions options_;
  std::map<std::string, std::unique_ptr<Session>> sessions_;
  std::deque<std::unique_ptr<Kernel>> pool_;
  std::vector<std::unique_ptr<Kernel>> graveyard_;
  uint64_t next_serial_ = 1;
  uint64_t next_exec_id_ = 1;
  bool refill_posted_ = false;
  bool shutting_down_ = false;
  int pool_failures_ = 0;
  EventLoop::TimerId sweep_timer_ = 0;
  pid_t cache_prep_pid_ = -1;
};

// The outputSchema of execute_python; every structuredContent this module produces matches it.
nlohmann::json ExecuteOutputSchema();

}  // namespace mcpx::session
