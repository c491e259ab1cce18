// SessionManager's private state, shared by the files that implement it (manager.cc, and
// manager_packages.cc for the installer's side). Nothing else includes this.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "session/manager.h"
#include "session/output_buffer.h"
#include "workspace/path.h"

namespace mcpx::session {

// Top-level module names remembered per session (a data-science session imports a few hundred).
inline constexpr size_t kMaxTrackedImports = 20000;
// Where long output and images past max_images are saved, in the workspace.
inline constexpr const char* kOutputsDir = ".mcp-executor/outputs";

// A workspace-relative path as sandboxed code (and every reply) spells it: "/workspace/<rel>".
inline std::string InSandbox(std::string_view rel) {
  return std::string(workspace::kSandboxRoot) + "/" + std::string(rel);
}

struct SessionManager::Execution {
  uint64_t id = 0;
  ExecuteCallbacks cb;
  std::string code;
  double timeout_s = 0;
  std::string timeout_note;  // set when timeout_seconds was capped
  std::string spill[3];      // [1] stdout, [2] stderr: the full text once truncated
  std::unique_ptr<OutputBuffer> out[3];
  int64_t start_ms = 0;
  std::chrono::steady_clock::time_point start_tp;  // duration_ms at sub-millisecond precision
  std::optional<ExecStatus> forced_status;         // timeout or cancelled once interrupted
  std::string kill_reason;                         // set by whoever decided to kill the kernel
  EventLoop::TimerId timeout_timer = 0, grace_timer = 0, tick_timer = 0;
  int64_t timeout_at_ms = 0;  // when timeout_timer fires
  // While the cell waits for its `%pip install`, its timeout is paused with this much left (the
  // install has its own bound, the policy's install_timeout_s).
  std::optional<int64_t> timeout_left_ms;
  std::optional<jail::CgroupUsage> usage_start;
  int64_t last_progress_ms = 0;
  double last_progress = 0;
  std::string state_notice;  // "previous kernel lost" notice for this call
  uint64_t execution_count = 0;
  workspace::DiskMark disk_start;  // the workspace when the cell began (disk_budget.h)
};

struct SessionManager::Session {
  std::string name;
  std::unique_ptr<Kernel> kernel;
  std::deque<std::unique_ptr<Execution>> queue;
  std::unique_ptr<Execution> running;
  uint64_t execution_count = 0;
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
  std::string lost_notice;
  std::string kill_reason;  // why the manager stopped the kernel when no call was running
  uint64_t kernels_started = 0;
  // Top-level modules this session's kernel has imported (its replies say): whom an install
  // must tell to reset. Cleared with the kernel.
  std::set<std::string> imports;
  bool installing = false;  // a `%pip install` of this session's cell is in the installer
};

}  // namespace mcpx::session
