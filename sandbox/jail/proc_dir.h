// Walking a procfs directory from the sandbox's init: getdents64 on an open /proc, no allocation
// (mini_init.h, cpu_meter.h).
#pragma once

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mcpx::jail {

inline bool IsPidName(const char* name) {
  if (*name == '\0') return false;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return false;
  }
  return true;
}

// Calls fn(name) for each process directory ("1", "42", ...) of the procfs `proc_fd` is.
template <typename Fn>
void ForEachPidDir(int proc_fd, Fn&& fn) {
  if (lseek(proc_fd, 0, SEEK_SET) != 0) return;
  alignas(struct dirent64) char buf[8192];
  for (;;) {
    const long n = syscall(SYS_getdents64, proc_fd, buf, sizeof buf);
    if (n <= 0) return;
    for (long off = 0; off < n;) {
      // glibc's dirent64 has the kernel's linux_dirent64 layout.
      const auto* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (IsPidName(d->d_name)) fn(d->d_name);
    }
  }
}

// "<pid><suffix>" into buf, e.g. "42/task" (pid names are at most 10 digits).
inline void PidPath(const char* pid, const char* suffix, char (&buf)[32]) {
  size_t i = 0;
  for (; pid[i] != '\0' && i < 20; ++i) buf[i] = pid[i];
  for (size_t j = 0; suffix[j] != '\0' && i < sizeof buf - 1; ++j) buf[i++] = suffix[j];
  buf[i] = '\0';
}

}  // namespace mcpx::jail
