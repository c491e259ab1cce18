#include "jail/mini_init.h"

#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "jail/child_pipeline.h"

namespace mcpx::jail {
namespace {

volatile pid_t g_worker = 0;

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

void Forward(int sig) {
  // The worker copy of this handler (before its execve resets it) sees 0 and does nothing:
  // kill(0, sig) would hit the whole process group.
  const pid_t worker = g_worker;
  if (worker > 0) kill(worker, sig);
}

void CloseEverything() {
  if (syscall(SYS_close_range, 0u, ~0u, 0u) == 0) return;
  // close_range missing or denied by the policy: close one by one up to the fd limit.
  struct rlimit lim {};
  const rlim_t max = getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : 1024;
  for (rlim_t fd = 0; fd < max; ++fd) close(static_cast<int>(fd));
}

}  // namespace

void FinishExecPlan(ExecPlan& plan) {
  plan.argv.clear();
  for (auto& a : plan.args) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  plan.envp.clear();
  for (auto& e : plan.env) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);
}

void RunInit(const ExecPlan& plan, int report_fd) {
  struct sigaction sa {};
  sa.sa_handler = Forward;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : kForwarded) sigaction(sig, &sa, nullptr);

  // Raw clone, not fork(): glibc's fork takes locks (malloc arenas) that a thread of the server
  // may have held at the moment of our own clone.
  const long pid = syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) {
    ReportChildFailure(report_fd, ChildFail("start the real process"));
    _exit(kSetupFailedExit);
  }
  if (pid == 0) {
    // execve resets the forwarding handlers to their defaults in the real process.
    execve(plan.path.c_str(), plan.argv.data(), plan.envp.data());
    ReportChildFailure(report_fd, ChildFail("execve"));
    _exit(127);
  }
  g_worker = static_cast<pid_t>(pid);
  // Init holds nothing: the session's pipes and sockets must see EOF when the real process ends,
  // and the parent's setup read sees EOF once the real process has exec'd.
  CloseEverything();

  for (;;) {
    int status = 0;
    const pid_t done = static_cast<pid_t>(wait4(-1, &status, 0, nullptr));
    if (done < 0) {
      if (errno == EINTR) continue;
      _exit(kSetupFailedExit);  // ECHILD: cannot happen while the worker is unreaped
    }
    if (done != pid) continue;  // a reaped orphan
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    _exit(128 + WTERMSIG(status));
  }
}

}  // namespace mcpx::jail
