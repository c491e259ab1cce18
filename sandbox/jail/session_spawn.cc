// The server's side of a session forked from a zygote (session_fork.h has the child's side):
// the plan the zygote gets, and the adoption of each session it forks.
#include "jail/jail.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

#include "jail/caps.h"
#include "jail/fd_passing.h"
#include "jail/landlock.h"
#include "jail/spawn_internal.h"
#include "util/io.h"

namespace mcpx::jail {

Result<SessionPlan> BuildSessionPlan(const SpawnRequest& req) {
  if (!req.policy) return InvalidArgument("session plan: no policy");
  const Policy& policy = *req.policy;
  SessionPlan p;
  p.limits = policy.limits;
  p.in_cgroup = req.cgroups != nullptr;
  BuildLimitPlans(p);
  ASSIGN_OR_RETURN(p.last_cap, LastCapFromParent());
  p.landlock = SandboxLandlock(req, policy.landlock ? LandlockAbi() : 0);
  p.seccomp = policy.seccomp_programs;
  p.init = SandboxInitWatch(policy.limits, -1, req.cgroups);
  p.cwd = SandboxCwd(req);
  return p;
}

namespace {

// The pid of a pidfd's process in our PID namespace (/proc/self/fdinfo "Pid:").
Result<pid_t> PidOfPidfd(int pidfd) {
  const std::string path = "/proc/self/fdinfo/" + std::to_string(pidfd);
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[1024];
  const ssize_t n = fd ? RetryEintr([&] { return read(fd.get(), buf, sizeof(buf) - 1); }) : -1;
  if (n <= 0) return ErrnoStatus(Code::kInternal, "cannot read " + path);
  buf[n] = '\0';
  const char* line = strstr(buf, "\nPid:");
  const long pid = line != nullptr ? strtol(line + 5, nullptr, 10) : -1;
  if (pid <= 0) return Internal("the session's init is gone before its setup ended");
  return static_cast<pid_t>(pid);
}

}  // namespace

Result<Sandbox> AdoptSession(UniqueFd report, UniqueFd init_note, std::unique_ptr<Cgroup> cgroup,
                             const SessionPlan& plan) {
  Sandbox sb;
  sb.adopted_ = true;
  sb.cgroup = std::move(cgroup);
  sb.init_note_ = std::move(init_note);
  sb.landlock_abi = plan.landlock.abi;
  sb.seccomp = !plan.seccomp.empty();
  sb.ids.inside_uid = plan.uid;
  sb.ids.inside_gid = plan.gid;
  // From here on, any early return destroys `sb`, which kills init once its pidfd is known.
  for (;;) {
    RETURN_IF_ERROR(WaitForChildReport(report.get(), nullptr));
    FailureRecord rec;
    UniqueFd passed;
    const ssize_t n = ReceiveReport(report.get(), &rec, &passed);
    if (n < 0) return ErrnoStatus(Code::kInternal, "session setup: cannot read the report");
    if (n == 0) {
      // EOF: every copy is closed, the kernel's last.
      if (!sb.pidfd) {
        return Status(Code::kUnavailable,
                      "session setup: the zygote ended before the session started");
      }
      return sb;
    }
    if (n == 1 && passed && reinterpret_cast<const char*>(&rec)[0] == kInitPidfdNote && !sb.pidfd) {
      ASSIGN_OR_RETURN(sb.pid, PidOfPidfd(passed.get()));
      sb.pidfd = std::move(passed);
      continue;
    }
    if (n != static_cast<ssize_t>(sizeof(rec))) {
      return Internal("session setup: malformed report from the zygote's child");
    }
    return SetupFailure(rec, "python3", "session");
  }
}

Result<std::optional<ExitStatus>> Sandbox::WaitAdopted(bool block) {
  pollfd p{pidfd.get(), POLLIN, 0};
  const int r = RetryEintr([&] { return poll(&p, 1, block ? -1 : 0); });
  if (r < 0) return ErrnoStatus(Code::kInternal, "cannot wait for sandbox");
  if (r == 0) return std::optional<ExitStatus>();
  // Init's notes: the task limit (if it struck), then its exit code, written just before it
  // exited. None: it was killed (SIGKILL is the only signal that ends it).
  ExitStatus st;
  bool exited = false;
  char notes[16];
  ssize_t n = 0;
  while (init_note_ && (n = read(init_note_.get(), notes, sizeof(notes))) > 0) {
    for (ssize_t i = 0; i < n; ++i) {
      if (notes[i] == kInitNoteTaskLimit) st.task_limit = true;
      if (notes[i] == kInitNoteExit && i + 1 < n) {
        st.code = static_cast<unsigned char>(notes[++i]);
        exited = true;
      }
    }
  }
  if (!exited) st.signal = SIGKILL;
  init_note_.reset();
  exit_ = st;
  return exit_;
}

}  // namespace mcpx::jail
