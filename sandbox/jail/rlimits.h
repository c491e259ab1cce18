// Resource limits: a backstop under the cgroup limits, and the memory limit where no cgroup is.
#pragma once

#include <sys/resource.h>

#include <array>
#include <cstdint>

#include "jail/child_failure.h"
#include "jail/policy.h"

namespace mcpx::jail {

struct RlimitPlan {
  struct Entry {
    int resource = 0;
    rlim_t value = 0;
    const char* label = "";
    // Set by the real process just before execve, not by init: init is a copy of the server,
    // whose address space can exceed any AS cap (an ASan build reserves terabytes), and under
    // such a cap the growth of init's own stack would fail with SIGSEGV.
    bool exec_only = false;
  };
  std::array<Entry, 8> entries{};
  size_t count = 0;
};

// Locked memory: mlock per process, and SysV SHM_LOCK segments, which are charged to the host
// user across user namespaces. Python needs none; 256 KiB per sandbox keeps ten sandboxes at a
// third of the usual 8 MiB per-user default.
inline constexpr uint64_t kMemlockBytes = 256ull << 10;

// NOFILE, FSIZE, CORE=0, NPROC, SIGPENDING, MSGQUEUE, MEMLOCK. Without a cgroup (`in_cgroup` false)
// the rlimits stand in for it: AS bounds memory (an address-space cap is a poor memory limit, so it
// is the fallback, not the default), and NPROC is lowered to ProcessLimit(); with a cgroup NPROC is
// the looser `nproc` backstop behind the pids controller.
RlimitPlan BuildRlimitPlan(const Limits& limits, bool in_cgroup);

// A zygote's (jail.h SpawnRequest::zygote): NOFILE, FSIZE, CORE=0 and, without a cgroup, AS. Not
// the limits counted per user up the chain of user namespaces (NPROC, SIGPENDING, MSGQUEUE,
// MEMLOCK): the kernel would hold every session forked from it to the zygote's values at the
// zygote's level, together. Each session sets all of them for itself.
RlimitPlan BuildZygoteRlimitPlan(const Limits& limits, bool in_cgroup);

// The most tasks a sandbox can hold (the pids controller or NPROC stops the next fork there), and
// the count at which init's watchdog stops it (mini_init.h).
uint64_t ProcessLimit(const Limits& limits);

// Child: lowers soft and hard limits (never raises above the current hard limit: that would
// need CAP_SYS_RESOURCE in the initial namespace). The first applies every entry but the
// exec_only ones, the second only those (after seccomp: the profile must allow prlimit64).
ChildFailure RlimitsInChild(const RlimitPlan& plan);
ChildFailure ExecOnlyRlimitsInChild(const RlimitPlan& plan);

}  // namespace mcpx::jail
