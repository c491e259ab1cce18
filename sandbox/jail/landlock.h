// Landlock: defence in depth for the filesystem rules the mounts already express. Read and
// execute everywhere; write only in the workspace, /tmp, /dev/shm and the harmless devices.
// Best effort: a kernel without Landlock leaves the layer
// inactive, which Sandbox::landlock_abi reports.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jail/child_failure.h"

namespace mcpx::jail {

// The running kernel's Landlock ABI version, 0 when unavailable (ENOSYS, EOPNOTSUPP: disabled
// at boot).
int LandlockAbi();

struct LandlockPlan {
  int abi = 0;  // 0: skip the layer
  uint64_t handled_fs = 0;
  uint64_t scoped = 0;  // ABI 6: abstract unix sockets and signals stay inside the sandbox
  struct Rule {
    std::string path;
    uint64_t access = 0;  // already filtered by handled_fs
  };
  std::vector<Rule> rules;
};

struct LandlockRequest {
  bool enabled = true;
  bool workspace = true;              // /workspace writable
  std::vector<std::string> writable;  // more folders writable, like the workspace
  bool scope_signals = true;          // with signals scoped, the sandbox can signal only itself
};

LandlockPlan BuildLandlockPlan(const LandlockRequest& request, int abi);

// Child, after no_new_privs (required for an unprivileged landlock_restrict_self).
ChildFailure LandlockInChild(const LandlockPlan& plan);

}  // namespace mcpx::jail
