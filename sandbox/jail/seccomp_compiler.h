// Compiles seccomp filters in the parent; the post-fork child only installs the bytes.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>

#include <cstdint>

#include <vector>

#include "jail/seccomp_profile.h"
#include "util/status.h"

namespace mcpx::jail {

// seccomp_data.arch of this machine's native syscalls.
#if defined(__x86_64__)
inline constexpr uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
inline constexpr uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#else
#error "unsupported architecture"
#endif

// A classic-BPF program ready for seccomp(SECCOMP_SET_MODE_FILTER).
//
// Install order in the child (after no_new_privs): CompileBuiltinFilter() first, then the
// profile, each with seccomp(SECCOMP_SET_MODE_FILTER, program.flags, &fprog). Builtin first so
// the profile need not allow seccomp(2) itself; the kernel applies the strictest action of all
// filters, and between two ERRNO results the newest filter's errno wins, so code sees the
// profile's errno (ENOSYS for anything not allow-listed) where both deny.
struct SeccompProgram {
  std::vector<sock_filter> insns;
  unsigned int flags = 0;  // SECCOMP_FILTER_FLAG_* from the profile's "flags"
  sock_fprog fprog() const {
    return sock_fprog{static_cast<unsigned short>(insns.size()),
                      const_cast<sock_filter*>(insns.data())};
  }
};

// The policy's OCI profile. Unknown syscall names or actions are errors. SCMP_ACT_KILL is
// compiled as KILL_PROCESS (libseccomp's KILL means KILL_THREAD, which would leave a Python
// process with a dead thread holding the GIL); SCMP_ACT_KILL_THREAD stays a thread kill.
// Repeated conditions on one argument index turn into one rule per condition (OR), as runc and
// crun do; distinct indexes in one rule are ANDed.
Result<SeccompProgram> CompileSeccompProfile(const SeccompProfile& profile);

// The built-in filter every policy gets, stacked on top of the profile: kills non-native
// architectures (x32, i386), denies TIOCSTI/TIOCLINUX by masked compare, clone with namespace
// flags, clone3 (ENOSYS so glibc falls back to clone), and the attack-surface list (io_uring,
// bpf, perf_event_open, userfaultfd, keyrings, ptrace, process_vm_*, kcmp, pidfd_getfd, mount
// API, unshare/setns, kexec, modules, open_by_handle_at, personality flags, AF_ALG/AF_VSOCK, ...).
Result<SeccompProgram> CompileBuiltinFilter();

}  // namespace mcpx::jail
