// The sandbox's PID 1: a few lines of post-fork code (no exec of its own) that starts the real
// process, forwards SIGINT/SIGTERM/SIGHUP/SIGUSR1/SIGUSR2 to it, reaps every orphan, and exits
// with the real process's status (exit code, or 128+signal). When it exits, the kernel kills
// everything left in the PID namespace.
//
// It is also the process-limit watchdog: every 250 ms it counts the tasks of its PID namespace in
// /proc, and when they reach the limit (where the pids controller or RLIMIT_NPROC makes the next
// fork fail) it notes why on its note fd and SIGKILLs everything. A fork bomb then ends within a
// tick instead of spinning at the limit until the cell's timeout, with or without a cgroup.
//
// Without a cgroup cpu quota it also bounds the CPU rate: its tick is then 100 ms, and on each it
// charges the CPU time its namespace used (cpu_meter.h) and, while that exceeds the policy's
// `cpus` per tick, keeps every other process of the namespace stopped (SIGSTOP, then SIGCONT once
// paid for).
//
// It runs last in the child pipeline, so it is as confined as the code it starts: no
// capabilities, no_new_privs, Landlock and seccomp are already in place. After starting the real
// process it needs only clone, close_range/close, wait4, kill, exit_group, and for the watchdog
// openat, read, setitimer, getdents64, lseek, newfstatat, write, tgkill; the real process needs
// prlimit64 for RLIMIT_AS without a cgroup (every Python profile allows them).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "jail/rlimits.h"

namespace mcpx::jail {

struct ExecPlan {
  std::string path;               // inside the sandbox
  std::vector<std::string> args;  // storage for argv
  std::vector<std::string> env;   // storage for envp ("K=V")
  std::vector<char*> argv;        // null-terminated, points into args
  std::vector<char*> envp;        // null-terminated, points into env
  std::string cwd;
};

// Fills argv/envp from args/env; call once, after which the storage must not change.
void FinishExecPlan(ExecPlan& plan);

struct InitWatch {
  uint64_t task_limit = 0;  // 0: no task watchdog
  int note_fd = -1;         // kept open by init only; receives kInitNoteTaskLimit
  // CPU rate in thousandths of a core that init enforces itself (cpu_meter.h); 0 when a cgroup
  // cpu quota does it, or when there is no limit.
  uint32_t cpu_millis = 0;
  long clock_ticks = 0;  // sysconf(_SC_CLK_TCK), the unit of /proc/<pid>/stat's times
  // A zygote's init (zygote.h): when its real process (the zygote) ends, init keeps reaping until
  // no process is left, so the sessions forked from it (in PID namespaces below this one) live on.
  bool linger = false;
  // A forked session's init: the server is not its parent and cannot wait for it, so init writes
  // kInitNoteExit and its exit code (one byte) on note_fd just before it exits.
  bool note_exit = false;
};

// The byte init writes on its note fd before it kills the namespace for the task limit.
inline constexpr char kInitNoteTaskLimit = 'P';
// InitWatch::note_exit: this byte, then the exit code.
inline constexpr char kInitNoteExit = 'E';

// Installs the forwarding handlers, starts the real process (which sets the plan's exec_only
// rlimits, execs plan.path, and on failure reports the step and errno on report_fd), then waits
// (and watches). Never returns.
[[noreturn]] void RunInit(const ExecPlan& plan, const RlimitPlan& rlimits, const InitWatch& watch,
                          int report_fd);

// Init's part once its real process `worker` runs (RunInit calls it; a forked session's init
// calls it directly, session_fork.h): forwards signals, reaps, watches, exits with the worker's
// status. Closes every fd but watch.note_fd first.
[[noreturn]] void SuperviseInit(pid_t worker, const InitWatch& watch);

// Tasks (threads included) of the PID namespace whose procfs `proc_fd` is. Allocation-free.
uint64_t CountTasks(int proc_fd);

}  // namespace mcpx::jail
