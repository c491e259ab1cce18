// What `exec` and `probe` prepare before one sandboxed Python run outside a server.
#pragma once

#include <memory>
#include <string>

#include "cli/options.h"
#include "jail/cgroup.h"
#include "session/runtime.h"
#include "session/server_policy.h"
#include "util/status.h"

namespace mcpx::cli {

// `path` created if missing, returned absolute and resolved; `what` names it in errors.
Result<std::string> EnsureDir(const std::string& path, const char* what);

struct SandboxSetup {
  std::unique_ptr<jail::CgroupManager> cgroups;  // null: RLIMIT_AS bounds memory instead
  session::KernelConfig config;                  // the same sandbox as a server's kernels
};

// The cgroup manager (a warning when cgroups are unusable) and the kernel configuration for
// `policy` with `workspace` (absolute) at /workspace.
Result<SandboxSetup> PrepareSandbox(const Options& opts, session::ServerPolicyPtr policy,
                                    const std::string& workspace);

}  // namespace mcpx::cli
