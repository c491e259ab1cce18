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
  };
  std::array<Entry, 5> entries{};
  size_t count = 0;
};

// NOFILE, FSIZE, CORE=0, NPROC; AS only when `memory_in_cgroup` is false (an address-space cap
// is a poor memory limit, so it is the fallback, not the default).
RlimitPlan BuildRlimitPlan(const Limits& limits, bool memory_in_cgroup);

// Child: lowers soft and hard limits (never raises above the current hard limit: that would
// need CAP_SYS_RESOURCE in the initial namespace).
ChildFailure RlimitsInChild(const RlimitPlan& plan);

}  // namespace mcpx::jail
