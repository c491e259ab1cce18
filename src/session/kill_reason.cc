#include "session/kill_reason.h"

#include <signal.h>
#include <string.h>

#include "jail/rlimits.h"
#include "util/units.h"

namespace mcpx::session {
namespace {

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

std::string ProcessLimitReason(uint64_t limit) {
  return "process limit of " + std::to_string(limit) +
         " reached (runaway fork or thread creation); the sandbox was stopped";
}

std::string KillReason(const KillFacts& f, const jail::Limits& limits) {
  if (!f.decided.empty()) return f.decided;
  if (!f.protocol_error.empty()) return f.protocol_error;
  if (f.oom_killed) return "memory limit " + MiB(limits.memory_bytes) + " exceeded";
  if (!f.exit) return "killed";
  if (f.exit->task_limit) return ProcessLimitReason(jail::ProcessLimit(limits));
  int sig = f.exit->signal;
  if (sig == 0 && f.exit->code > 128 && f.exit->code < 128 + 65) sig = f.exit->code - 128;
  if (sig == SIGKILL && !f.has_cgroup) {
    return "killed by SIGKILL (likely the memory limit " + MiB(limits.memory_bytes) +
           " enforced by RLIMIT_AS, or the host's OOM killer)";
  }
  if (sig != 0) {
    std::string what = "the Python interpreter was killed by " + SignalName(sig);
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT) {
      what += " (a crash, usually in native code such as ctypes or a C extension)";
    }
    return what;
  }
  return "the Python interpreter exited with code " + std::to_string(f.exit->code) +
         " (os._exit() or a fatal error)";
}

}  // namespace mcpx::session
