// Named sessions, each one kernel in its own jail and cgroup, over a warm pool of kernels that
// have already imported the policy's preload modules.
//
// Calls in one session run in order; calls in different sessions run at the same time; nothing
// here blocks the event loop, so ping, file tools and cancellations are served while code runs.
// A timeout or a cancellation sends SIGINT (KeyboardInterrupt, state kept); a kernel that does
// not come back within the policy's grace period is killed, and the next call in that session
// gets a fresh kernel and is told the state was lost.
//
// Kernels come from a KernelFactory (kernel.h): the jailed one in the server, a fake in tests.
// Outcomes are typed (execution.h); the tools layer makes MCP results of them.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "jail/policy.h"
#include "session/execution.h"
#include "session/kernel.h"
#include "session/notebook_recorder.h"
#include "session/package_port.h"
#include "session/saved_outputs.h"
#include "session/server_policy.h"
#include "session/warm_pool.h"
#include "util/event_loop.h"
#include "workspace/disk_budget.h"
#include "workspace/workspace.h"

namespace mcpx::session {

struct ManagerOptions {
  jail::Limits sandbox;      // what each kernel's jail enforces (named in kill reasons)
  SessionSettings settings;  // timeouts, output and image caps, sessions, workspace budget
  size_t warm_kernels = 1;   // kernels kept ready before they are asked for
};

class SessionManager {
 public:
  SessionManager(EventLoop* loop, std::unique_ptr<KernelFactory> factory,
                 std::shared_ptr<workspace::Workspace> ws, ManagerOptions options);
  ~SessionManager();

  // Starts the warm pool (in the background).
  void Start();
  // Kills every kernel and removes every cgroup; pending calls get a "server shutting down" error.
  void Shutdown();

  // Queues `request` in its session; `cb.done` runs exactly once, possibly before this returns.
  // It may call back into the manager (Execute, Cancel, Reset): the manager is consistent then.
  ExecutionRef Execute(ExecuteRequest request, ExecuteCallbacks cb);
  // A queued call ends with kCancelled; a running one is interrupted (status "cancelled").
  void Cancel(const ExecutionRef& ref);
  SessionsReport ListSessions() const;
  // Kills the session's kernel; returns whether it existed.
  bool Reset(const std::string& session);

  // The installer that install_package and a cell's `%pip install` reach (not owned; null:
  // none). Set once, before the first call.
  void SetInstaller(PackageInstaller* installer) { installer_ = installer; }
  // Every install goes through here: after it, every kernel looks for new packages before its
  // next cell, and the outcome handed to `cb.done` names the sessions that had already imported
  // a module of an installed distribution (they keep the old one until reset_session). Returns
  // an id for CancelInstall.
  uint64_t Install(InstallRequest request, InstallCallbacks cb);
  void CancelInstall(uint64_t id);

  const jail::Limits& sandbox_limits() const { return options_.sandbox; }
  const SessionSettings& settings() const { return options_.settings; }

 private:
  struct Execution;
  struct Session;

  Status EnsureKernel(Session& s);
  void Pump(Session& s);  // starts the next queued execution when the kernel is ready and idle
  void Begin(Session& s);
  void OnKernelMessage(const std::string& session, const KernelFrame& msg);
  void OnInstallFrame(Session& s, const KernelFrame& msg);  // manager_packages.cc
  void AfterInstall(InstallOutcome& outcome);
  void OnKernelOutput(const std::string& session, int stream, std::string_view data);
  void OnKernelExit(const std::string& session, uint64_t serial, jail::ExitStatus exit);
  void ArmTimeout(Execution& e, const std::string& session, int64_t ms);
  void OnTimeout(const std::string& session, uint64_t exec_id);
  void Interrupt(Session& s, ExecStatus status, const std::string& why);
  void Tick(const std::string& session, uint64_t exec_id);
  // A finished call: its outcome and whom to hand it to. Deliver() comes last, once the session
  // is consistent, because done() may call back into the manager (even reset the session).
  struct Finished {
    std::function<void(Result<ExecOutcome>)> done;
    ExecOutcome outcome;
    void Deliver() { done(std::move(outcome)); }
  };
  // Ends the running call with the kernel's reply, or with its end (reply null).
  [[nodiscard]] Finished Complete(Session& s, const KernelFrame* reply);
  // A finished stream for the outcome; a truncated one's whole text is saved in the workspace
  // (manager_output.cc).
  StreamOutput CaptureStream(const Session& s, Execution& e, int stream);
  // Counts the outcome's saved files against the caps; says in a note what that removed.
  void CountSavedOutputFiles(const Session& s, ExecOutcome& out);
  static void FailAll(std::deque<std::unique_ptr<Execution>> calls, const Status& why);
  void SweepIdle();
  std::string KillReasonFor(const Session& s, const Execution& e,
                            const std::optional<jail::ExitStatus>& exit) const;
  Session* Find(const std::string& name);
  Execution* Running(const std::string& name, uint64_t exec_id);

  EventLoop* loop_;
  std::unique_ptr<KernelFactory> factory_;
  std::shared_ptr<workspace::Workspace> ws_;
  std::unique_ptr<workspace::DiskBudget> disk_;  // null if the workspace cannot be measured
  std::unique_ptr<SavedOutputFiles> saved_;
  std::unique_ptr<NotebookRecorder> notebooks_;  // null when the policy says record_notebook false
  ManagerOptions options_;
  WarmPool pool_;
  std::map<std::string, std::unique_ptr<Session>> sessions_;
  uint64_t next_exec_id_ = 1;
  bool shutting_down_ = false;
  EventLoop::TimerId sweep_timer_ = 0;
  PackageInstaller* installer_ = nullptr;
  uint64_t packages_generation_ = 0;  // bumped by AfterInstall; sent with every cell
};

}  // namespace mcpx::session
