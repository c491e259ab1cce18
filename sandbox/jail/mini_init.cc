#include "jail/mini_init.h"

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
#include "jail/cpu_meter.h"
#include "jail/proc_dir.h"

namespace mcpx::jail {
namespace {

volatile pid_t g_worker = 0;
volatile sig_atomic_t g_tick = 0;
// Set before init stops the namespace for the CPU rate, cleared after it continues it.
volatile sig_atomic_t g_stopped = 0;

constexpr long kWatchIntervalUs = 250 * 1000;
// While init meters CPU: a tick's burst on every core cannot be stopped before the tick ends, and
// at 250 ms two cores could run a 0.5-core sandbox at 0.9 cores over a one-second window.
constexpr long kMeterIntervalUs = 100 * 1000;

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

void Forward(int sig) {
  // The worker copy of this handler (before its execve resets it) sees 0 and does nothing:
  // kill(0, sig) would hit the whole process group.
  const pid_t worker = g_worker;
  if (worker <= 0) return;
  if (g_stopped == 0) {
    kill(worker, sig);
    return;
  }
  // Every thread of a stopped process refuses a process-directed signal, and at SIGCONT any of
  // them may take it: a busy thread would, leaving the main thread in its blocking call (Python's
  // time.sleep: no KeyboardInterrupt). Sent to the main thread, it ends that call as it would have.
  syscall(SYS_tgkill, worker, worker, sig);
}

void Tick(int) { g_tick = 1; }

// Handlers, not the worker's pid yet: a signal before SuperviseInit knows the worker is dropped.
void InstallForwarding() {
  struct sigaction sa {};
  sa.sa_handler = Forward;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : kForwarded) sigaction(sig, &sa, nullptr);
}

[[noreturn]] void ExitInit(const InitWatch& watch, int code) {
  if (watch.note_exit) {
    const char note[2] = {kInitNoteExit, static_cast<char>(code & 0xff)};
    (void)!write(watch.note_fd, note, sizeof(note));
  }
  _exit(code);
}

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

bool CountsTasks(const InitWatch& watch) { return watch.task_limit != 0 && watch.note_fd >= 0; }
bool MetersCpu(const InitWatch& watch) { return watch.cpu_millis != 0 && watch.clock_ticks > 0; }

long WatchIntervalUs(const InitWatch& watch) {
  return MetersCpu(watch) ? kMeterIntervalUs : kWatchIntervalUs;
}

// SIGALRM every tick interrupts init's wait4 (the handler has no SA_RESTART). Returns the
// namespace's procfs, or -1 when the watchdog cannot run (the limit is then the rlimit alone, and
// the CPU rate unbounded).
int StartWatch(const InitWatch& watch) {
  if (!CountsTasks(watch) && !MetersCpu(watch)) return -1;
  const int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd < 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = Tick;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, nullptr);
  const long us = WatchIntervalUs(watch);
  const struct itimerval every {
    {0, us}, { 0, us }
  };
  if (setitimer(ITIMER_REAL, &every, nullptr) != 0) {
    close(proc_fd);
    return -1;
  }
  return proc_fd;
}

}  // namespace

uint64_t CountTasks(int proc_fd) {
  uint64_t tasks = 0;
  ForEachPidDir(proc_fd, [&](const char* pid) {
    // procfs gives a task/ folder two links plus one per thread; a zombie has none left.
    char path[32];
    PidPath(pid, "/task", path);
    struct stat st {};
    if (fstatat(proc_fd, path, &st, 0) == 0 && st.st_nlink > 2) {
      tasks += st.st_nlink - 2;
    } else {
      tasks += 1;
    }
  });
  return tasks;
}

namespace {

// Called on each tick: at the limit, says so once and kills everything but init; the worker's
// death then ends init, and with it the namespace. True when it killed.
bool CheckTasks(int proc_fd, const InitWatch& watch, bool* noted) {
  if (CountTasks(proc_fd) < watch.task_limit) return false;
  if (!*noted) {
    const char note = kInitNoteTaskLimit;
    (void)!write(watch.note_fd, &note, 1);
    *noted = true;
  }
  kill(-1, SIGKILL);  // every process of the namespace but init itself
  return true;
}

// More processes than the task limits of the shipped policies allow; any beyond are charged a
// whole tick each (cpu_meter.h).
constexpr size_t kMaxMetered = 1024;

// The last two samples, alternating. Static and all zero (.bss, untouched by the server itself):
// at 80 KiB it would crowd the stack of whichever server thread cloned init.
struct CpuSamples {
  ProcCpu table[2][kMaxMetered];
  size_t count[2];
  int last;
};
CpuSamples g_samples;

// Called on each tick without a cgroup cpu quota: charges the namespace's CPU time since the last
// tick, and stops or continues every process but init.
void MeterCpu(int proc_fd, const InitWatch& watch, CpuBucket* bucket) {
  CpuSamples& s = g_samples;
  const int prev = s.last;
  const int cur = prev ^ 1;
  size_t missed = 0;
  s.count[cur] = SampleProcCpu(proc_fd, s.table[cur], kMaxMetered, &missed);
  s.last = cur;
  const uint64_t ticks = CpuUsedBetween(s.table[prev], s.count[prev], s.table[cur], s.count[cur]);
  const auto interval_us = static_cast<uint64_t>(kMeterIntervalUs);
  const uint64_t used_us =
      ticks * 1'000'000 / static_cast<uint64_t>(watch.clock_ticks) + missed * interval_us;
  const uint64_t allowance_us = uint64_t{watch.cpu_millis} * interval_us / 1000;
  // g_stopped is set around the kills so that a signal forwarded meanwhile goes to the main thread.
  if (CpuBucketTick(bucket, used_us, allowance_us)) {
    g_stopped = 1;
    // Again on every stopped tick: cheap for stopped processes, and it catches any that started
    // as the last one was sent.
    kill(-1, SIGSTOP);
  } else if (g_stopped != 0) {
    kill(-1, SIGCONT);
    g_stopped = 0;
  }
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
  InstallForwarding();
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
  SuperviseInit(static_cast<pid_t>(pid), watch);
}

void SuperviseInit(pid_t worker, const InitWatch& watch) {
  InstallForwarding();  // again for a forked session's init, whose worker started before
  g_worker = worker;
  // Init holds nothing: the session's pipes and sockets must see EOF when the real process ends,
  // and the parent's setup read sees EOF once the real process has exec'd.
  CloseEverything(watch.note_fd);
  const int proc_fd = StartWatch(watch);
  bool noted = false;
  CpuBucket bucket;
  int worker_code = -1;  // the worker's status as an exit code, once reaped (linger)

  for (;;) {
    int status = 0;
    const pid_t done = static_cast<pid_t>(wait4(-1, &status, 0, nullptr));
    const int wait_errno = errno;
    // After any return, not only EINTR: orphans exiting in a stream would otherwise keep wait4
    // returning and the ticks unhandled.
    if (g_tick != 0 && proc_fd >= 0) {
      g_tick = 0;
      // The task limit first: its SIGKILL ends everything, stopped or not.
      const bool killed = CountsTasks(watch) && CheckTasks(proc_fd, watch, &noted);
      if (!killed && MetersCpu(watch)) MeterCpu(proc_fd, watch, &bucket);
    }
    if (done < 0) {
      if (wait_errno == EINTR) continue;
      // ECHILD: only a lingering init gets here (it reaped the worker and every orphan).
      ExitInit(watch, worker_code >= 0 ? worker_code : kSetupFailedExit);
    }
    if (done != worker) continue;  // a reaped orphan
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (!watch.linger) ExitInit(watch, code);
    worker_code = code;
    g_worker = 0;  // nothing to forward to any more
  }
}

}  // namespace mcpx::jail
