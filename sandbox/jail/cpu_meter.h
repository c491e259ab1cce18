// The CPU-rate fallback of the sandbox's init (mini_init.h): without a cgroup cpu quota, init
// meters the CPU time of its PID namespace on every watchdog tick and stops the namespace
// (SIGSTOP to every process but itself) while it is over the policy's rate.
//
// Metering: each process's CPU time, own (utime+stime) and reaped (cutime+cstime), read from
// /proc/<pid>/stat. A process's own time is charged as it grows. When a process is reaped, its
// time moves into its parent's reaped fields: what was already charged while it lived is then
// taken off the parent's growth, so nothing is charged twice. A parent that ignores SIGCHLD gets
// nothing in its reaped fields (the kernel discards the time of auto-reaped children), which is why
// the meter does not simply charge the growth of a namespace-wide sum: that sum drops when such a
// child goes, and the drop would hide the next tick's use.
//
// Everything here is allocation-free: it runs in init, after the fork of a multi-threaded server.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mcpx::jail {

// One process in one sample. Times are in clock ticks (sysconf(_SC_CLK_TCK)).
struct ProcCpu {
  int32_t pid = 0;
  int32_t ppid = 0;
  uint64_t start = 0;   // starttime: tells a reused pid from the process that had it
  uint64_t own = 0;     // utime + stime (all threads, exited ones included)
  uint64_t reaped = 0;  // cutime + cstime (reaped children and their reaped children)
  uint64_t owed = 0;    // scratch of CpuUsedBetween: time of gone children already charged
};

// Parses the text of /proc/<pid>/stat. The command name sits in parentheses and may itself hold
// spaces and parentheses, so the fields are counted from the last ')'. False when malformed.
bool ParseProcStat(const char* text, size_t len, ProcCpu* out);

// Ticks used between two samples of the namespace (`cur` may be in any order; its `owed` fields
// are overwritten). Never negative: a reused pid or a process whose time went down counts as new.
uint64_t CpuUsedBetween(const ProcCpu* prev, size_t prev_n, ProcCpu* cur, size_t cur_n);

// Samples every process of the PID namespace whose procfs `proc_fd` is into `out` (at most
// `cap`). Processes past `cap` are counted in *missed and left out (the caller then charges
// conservatively). Returns how many were stored.
size_t SampleProcCpu(int proc_fd, ProcCpu* out, size_t cap, size_t* missed);

// A debt of CPU time: each tick allows `allowance_us`, and the time used beyond it is paid by ticks
// spent stopped (each pays one allowance).
struct CpuBucket {
  uint64_t debt_us = 0;
  // A backstop against over-charging (processes past the sample table), not a pardon: the debt
  // reaches at most one tick of every core's time before the namespace is stopped, and a small
  // cap would let a machine with many cores keep most of a large burst.
  uint64_t cap_us = 30'000'000;
  // Debt tolerated without stopping: utime and stime move in clock ticks (10 ms), and that
  // rounding alone would otherwise stop, for a whole tick, a program running at exactly the rate.
  uint64_t tolerance_us = 50'000;
};

// Adds `used_us` and takes off `allowance_us`; true while the namespace must stay stopped (the debt
// exceeds the tolerance).
bool CpuBucketTick(CpuBucket* bucket, uint64_t used_us, uint64_t allowance_us);

}  // namespace mcpx::jail
