#include "jail/cpu_meter.h"

#include <fcntl.h>
#include <unistd.h>

#include "jail/proc_dir.h"

namespace mcpx::jail {
namespace {

// Reads one unsigned decimal field at *p and skips the space after it; false when there is none.
bool NextNumber(const char** p, const char* end, uint64_t* value) {
  const char* s = *p;
  if (s < end && *s == '-') return false;  // the fields read here are never negative
  uint64_t v = 0;
  const char* digits = s;
  for (; s < end && *s >= '0' && *s <= '9'; ++s) v = v * 10 + static_cast<uint64_t>(*s - '0');
  if (s == digits) return false;
  if (s < end && *s == ' ') ++s;
  *p = s;
  *value = v;
  return true;
}

bool SkipField(const char** p, const char* end) {
  const char* s = *p;
  while (s < end && *s != ' ' && *s != '\n') ++s;
  if (s == *p) return false;
  if (s < end && *s == ' ') ++s;
  *p = s;
  return true;
}

// The entry for pid (and start, unless 0) in `table`, searched from *hint on: procfs lists pids in
// ascending order, so consecutive look-ups in two samples mostly hit at the hint.
template <typename T>
T* Find(T* table, size_t n, int32_t pid, uint64_t start, size_t* hint) {
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (*hint + k) % n;
    if (table[i].pid == pid && (start == 0 || table[i].start == start)) {
      *hint = i + 1;
      return &table[i];
    }
  }
  return nullptr;
}

bool ReadProcStat(int proc_fd, const char* pid, ProcCpu* out) {
  char path[32];
  PidPath(pid, "/stat", path);
  const int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // gone since the directory was listed
  // The whole line fits: a 64-byte comm at most, then about 50 numbers.
  char buf[1024];
  const ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n > 0 && ParseProcStat(buf, static_cast<size_t>(n), out);
}

}  // namespace

bool ParseProcStat(const char* text, size_t len, ProcCpu* out) {
  const char* end = text + len;
  const char* close_paren = nullptr;
  for (const char* s = text; s < end; ++s) {
    if (*s == ')') close_paren = s;
  }
  if (close_paren == nullptr) return false;
  uint64_t pid = 0;
  const char* p = text;
  if (!NextNumber(&p, close_paren, &pid) || pid == 0 || pid > INT32_MAX) return false;
  // ") S ppid ..." : field 3 (state) follows the last ')' and a space.
  p = close_paren + 1;
  if (p >= end || *p != ' ') return false;
  ++p;
  uint64_t f[23] = {};  // f[k]: field k (1-based); only those read below
  for (int k = 3; k <= 22; ++k) {
    // The others may be negative (tty_nr, tpgid, priority, nice) or not numbers (state).
    const bool read = k == 4 || (k >= 14 && k <= 17) || k == 22;
    if (!(read ? NextNumber(&p, end, &f[k]) : SkipField(&p, end))) return false;
  }
  if (f[4] > INT32_MAX) return false;
  out->pid = static_cast<int32_t>(pid);
  out->ppid = static_cast<int32_t>(f[4]);
  out->own = f[14] + f[15];
  out->reaped = f[16] + f[17];
  out->start = f[22];
  out->owed = 0;
  return true;
}

uint64_t CpuUsedBetween(const ProcCpu* prev, size_t prev_n, ProcCpu* cur, size_t cur_n) {
  for (size_t i = 0; i < cur_n; ++i) cur[i].owed = 0;
  // A gone process was charged `own + reaped` as of the last sample. If its parent reaped it, the
  // parent's reaped time grows by at least that much, which must not be charged again.
  size_t hint = 0;
  size_t parent_hint = 0;
  for (size_t i = 0; i < prev_n; ++i) {
    if (Find(cur, cur_n, prev[i].pid, prev[i].start, &hint) != nullptr) continue;
    ProcCpu* parent = Find(cur, cur_n, prev[i].ppid, 0, &parent_hint);
    if (parent != nullptr) parent->owed += prev[i].own + prev[i].reaped;
  }
  uint64_t used = 0;
  hint = 0;
  for (size_t i = 0; i < cur_n; ++i) {
    const ProcCpu* before = Find(prev, prev_n, cur[i].pid, cur[i].start, &hint);
    uint64_t own = cur[i].own;
    uint64_t reaped = cur[i].reaped;
    if (before != nullptr && before->own <= own && before->reaped <= reaped) {
      own -= before->own;
      reaped -= before->reaped;
    }
    // Per parent, so the charged time of children that were auto-reaped (and so never reached
    // any parent's reaped time) cannot offset anyone's own time.
    used += own + (reaped > cur[i].owed ? reaped - cur[i].owed : 0);
  }
  return used;
}

size_t SampleProcCpu(int proc_fd, ProcCpu* out, size_t cap, size_t* missed) {
  *missed = 0;
  size_t n = 0;
  ForEachPidDir(proc_fd, [&](const char* pid) {
    if (n == cap) {
      ++*missed;
    } else if (ReadProcStat(proc_fd, pid, &out[n])) {
      ++n;
    }
  });
  return n;
}

bool CpuBucketTick(CpuBucket* bucket, uint64_t used_us, uint64_t allowance_us) {
  uint64_t debt = bucket->debt_us + used_us;
  debt = debt > allowance_us ? debt - allowance_us : 0;
  bucket->debt_us = debt < bucket->cap_us ? debt : bucket->cap_us;
  return bucket->debt_us > bucket->tolerance_us;
}

}  // namespace mcpx::jail
