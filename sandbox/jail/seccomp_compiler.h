// Compiles seccomp filters in the parent; the post-fork child only installs the bytes.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "jail/policy.h"
#include "util/status.h"

namespace mcpx::jail {

// A classic-BPF program ready for seccomp(SECCOMP_SET_MODE_FILTER).
struct SeccompProgram {
  std::vector<sock_filter> insns;
  sock_fprog fprog() const {
    return sock_fprog{static_cast<unsigned short>(insns.size()),
                      const_cast<sock_filter*>(insns.data())};
  }
};

// The policy's OCI profile. Unknown syscall names or actions are errors.
Result<SeccompProgram> CompileSeccompProfile(const SeccompProfile& profile);

// The built-in filter every policy gets, stacked on top of the profile: kills non-native
// architectures (x32, i386), denies TIOCSTI/TIOCLINUX by masked compare, clone with namespace
// flags, clone3 (ENOSYS so glibc falls back to clone), and the attack-surface list (io_uring,
// bpf, perf_event_open, userfaultfd, keyrings, ptrace, process_vm_*, kcmp, pidfd_getfd, mount
// API, unshare/setns, kexec, modules, open_by_handle_at, personality flags, AF_ALG/AF_VSOCK, ...).
Result<SeccompProgram> CompileBuiltinFilter();

}  // namespace mcpx::jail
