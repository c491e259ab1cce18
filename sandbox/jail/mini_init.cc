#include "jail/mini_init.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "jail/child_pipeline.h"

namespace mcpx::jail {
namespace {

volatile pid_t g_worker = 0;
volatile sig_atomic_t g_tick = 0;

constexpr long kWatchIntervalUs = 250 * 1000;

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

void Forward(int sig) {
  // The worker copy of this handler (before its execve resets it) sees 0 and does nothing:
  // kill(0, sig) would hit the whole process group.
  const pid_t worker = g_worker;
  if (worker > 0) kill(worker, sig);
}

void Tick(int) { g_tick = 1; }

// Closes every fd but `keep` (-1: none).
void CloseEverything(int keep) {
  const unsigned k = keep >= 0 ? static_cast<unsigned>(keep) : ~0u;
  const bool low_ok = k == 0 || syscall(SYS_close_range, 0u, k - 1, 0u) == 0;
  const bool high_ok = k == ~0u || syscall(SYS_close_range, k + 1, ~0u, 0u) == 0;
  if (low_ok && high_ok) return;
  // close_range missing or denied by the policy: close one by one up to the fd limit.
  struct rlimit lim {};
  const rlim_t max = getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : 1024;
  for (rlim_t fd = 0; fd < max; ++fd) {
    if (static_cast<unsigned>(fd) != k) close(static_cast<int>(fd));
  }
}

// SIGALRM every 250 ms interrupts init's wait4 (the handler has no SA_RESTART). Returns the
// namespace's procfs, or -1 when the watchdog cannot run (the limit is then the rlimit alone).
int StartWatch(const InitWatch& watch) {
  if (watch.task_limit == 0 || watch.note_fd < 0) return -1;
  const int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd < 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = Tick;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, nullptr);
  const struct itimerval every {
    {0, kWatchIntervalUs}, { 0, kWatchIntervalUs }
  };
  if (setitimer(ITIMER_REAL, &every, nullptr) != 0) {
    close(proc_fd);
    return -1;
  }
  return proc_fd;
}

bool IsPid(const char* name) {
  if (*name == '\0') return false;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return false;
  }
  return true;
}

// "<pid>/task" into buf (pid names are at most 10 digits).
void TaskDirPath(const char* pid, char (&buf)[32]) {
  size_t i = 0;
  for (; pid[i] != '\0' && i < 20; ++i) buf[i] = pid[i];
  const char suffix[] = "/task";
  for (size_t j = 0; j < sizeof suffix; ++j) buf[i + j] = suffix[j];
}

}  // namespace

uint64_t CountTasks(int proc_fd) {
  if (lseek(proc_fd, 0, SEEK_SET) != 0) return 0;
  alignas(struct dirent64) char buf[16384];
  uint64_t tasks = 0;
  for (;;) {
    const long n = syscall(SYS_getdents64, proc_fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      // glibc's dirent64 has the kernel's linux_dirent64 layout.
      const auto* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (!IsPid(d->d_name)) continue;
      // procfs gives a task/ folder two links plus one per thread; a zombie has none left.
      char path[32];
      TaskDirPath(d->d_name, path);
      struct stat st {};
      if (fstatat(proc_fd, path, &st, 0) == 0 && st.st_nlink > 2) {
        tasks += st.st_nlink - 2;
      } else {
        tasks += 1;
      }
    }
  }
  return tasks;
}

namespace {

// Called on each tick: at the limit, says so once and kills everything but init; the worker's
// death then ends init, and with it the namespace.
void CheckTasks(int proc_fd, const InitWatch& watch, bool* stopped) {
  if (CountTasks(proc_fd) < watch.task_limit) return;
  if (!*stopped) {
    const char note = kInitNoteTaskLimit;
    (void)!write(watch.note_fd, &note, 1);
    *stopped = true;
  }
  kill(-1, SIGKILL);  // every process of the namespace but init itself
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

void RunInit(const ExecPlan& plan, const RlimitPlan& rlimits, const InitWatch& watch,
             int report_fd) {
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
    if (const ChildFailure f = ExecOnlyRlimitsInChild(rlimits); f.failed()) {
      ReportChildFailure(report_fd, f);
      _exit(kSetupFailedExit);
    }
    // execve resets the forwarding handlers to their defaults in the real process.
    execve(plan.path.c_str(), plan.argv.data(), plan.envp.data());
    ReportChildFailure(report_fd, ChildFail("execve"));
    _exit(127);
  }
  g_worker = static_cast<pid_t>(pid);
  // Init holds nothing: the session's pipes and sockets must see EOF when the real process ends,
  // and the parent's setup read sees EOF once the real process has exec'd.
  CloseEverything(watch.note_fd);
  const int proc_fd = StartWatch(watch);
  bool stopped = false;

  for (;;) {
    int status = 0;
    const pid_t done = static_cast<pid_t>(wait4(-1, &status, 0, nullptr));
    if (done < 0) {
      if (errno == EINTR) {
        if (g_tick != 0 && proc_fd >= 0) {
          g_tick = 0;
          CheckTasks(proc_fd, watch, &stopped);
        }
        continue;
      }
      _exit(kSetupFailedExit);  // ECHILD: cannot happen while the worker is unreaped
    }
    if (done != pid) continue;  // a reaped orphan
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    _exit(128 + WTERMSIG(status));
  }
}

}  // namespace mcpx::jail
