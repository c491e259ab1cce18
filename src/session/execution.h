// What one execute_python call asks of the session layer, and what it gets back: typed, with no
// MCP in it (tools/execute_result.h turns an ExecOutcome into the tool's result).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "session/kernel_frame.h"
#include "session/output_buffer.h"
#include "util/status.h"

namespace mcpx::session {

struct ExecuteRequest {
  std::string session = "default";
  std::string code;
  std::optional<double> timeout_seconds;  // nullopt: the policy's default
};

// 1 to 64 of letters, digits, '_', '-', '.'; the error names the argument.
Status ValidateSessionName(const std::string& name);

enum class ExecStatus { kOk, kError, kTimeout, kCancelled, kKilled };
// "ok", "error", "timeout", "cancelled", "killed"
std::string_view ExecStatusName(ExecStatus status);

// The budget of the reply's second copy of a stream (see StreamOutput).
inline constexpr uint64_t kBriefOutputBytes = 2048;

// One output stream in the reply, carriage returns collapsed (output_buffer.h). `full` is the
// text within the policy's output_kb, `brief` within kBriefOutputBytes: tools/execute_result.cc
// puts one in the text block and the other in structuredContent, and writes the markers.
struct StreamOutput {
  OutputView full;
  OutputView brief;
  uint64_t budget = 0;  // the policy's output_kb: the size of `full`, and a good read_file page
  uint64_t bytes = 0;
  uint64_t lines = 0;
  std::string saved;         // "/workspace/..." file holding all of it; empty when not saved
  uint64_t saved_bytes = 0;  // less than `bytes` when saving stopped early
  std::string save_error;    // why it was not saved, or stopped early
};

struct ExecOutcome {
  std::string session;
  ExecStatus status = ExecStatus::kOk;
  uint64_t execution_count = 0;
  StreamOutput out;                   // stdout
  StreamOutput err;                   // stderr
  std::optional<std::string> result;  // repr of the last expression
  std::optional<ErrorInfo> error;     // the exception, when status is kError
  std::vector<CheckedImage> images;   // PNGs, checked (kernel_frame.h)
  bool truncated = false;
  double duration_ms = 0;
  double timeout_s = 0;  // the effective timeout (after the policy's cap)
  std::optional<double> cpu_ms;
  std::optional<uint64_t> peak_memory_bytes;
  std::string kill_reason;               // non-empty exactly when status is kKilled
  std::vector<std::string> saved_files;  // "/workspace/...": long output, images past max_images
  std::vector<std::string> notes;
};

struct ExecuteCallbacks {
  // Runs exactly once: the outcome, or an error when the code never ran (invalid arguments, no
  // kernel, too many sessions, reset or cancelled while queued, the server shutting down).
  std::function<void(Result<ExecOutcome>)> done;
  // Progress while the code runs: seconds elapsed, the timeout, and fresh output or "running
  // for N s". Null when nobody asked for progress.
  std::function<void(double progress, double total, std::string message)> progress;
};

// Names one call for Cancel(); id 0 names nothing (the call already ended).
struct ExecutionRef {
  std::string session;
  uint64_t id = 0;
};

struct SessionInfo {
  std::string name;
  std::string state;  // starting, idle, busy, stopped
  double age_seconds = 0;
  double idle_seconds = 0;
  uint64_t execution_count = 0;
  size_t queued = 0;
  std::optional<uint64_t> memory_bytes;  // with a cgroup only
  std::optional<uint64_t> peak_memory_bytes;
  std::optional<double> cpu_ms;
  uint64_t kernel_restarts = 0;
};

struct SessionsReport {
  std::vector<SessionInfo> sessions;
  uint32_t max_sessions = 0;
  size_t warm_kernels = 0;
  uint64_t memory_limit_bytes = 0;
};

}  // namespace mcpx::session
