// Everything a server (or `exec`) prepares once before starting kernels: the policy's compiled
// seccomp filters, the package overlay folder and the matplotlib font cache.
#pragma once

#include <sys/types.h>
#include <memory>

#include <string>

#include "jail/cgroup.h"
#include "jail/policy.h"
#include "session/kernel.h"
#include "util/status.h"

namespace mcpx::session {

struct RuntimePaths {
  std::string rootfs_dir;
  std::string kernel_dir;
  std::string state_dir;  // <state>/packages, <state>/mpl-cache live here
  std::string workspace;
};

// Compiles the filters, creates the state folders, and fills a KernelConfig. The font cache is
// not built here (it takes seconds): see PrepareMplCache.
Result<KernelConfig> MakeKernelConfig(jail::PolicyPtr policy, const RuntimePaths& paths,
                                      jail::CgroupManager* cgroups);

// Starts building matplotlib's font cache into config.mpl_cache_dir when it is missing, by
// running the kernel's prepare_mpl_cache.py on the host (our own script, no user code; seconds,
// once). Returns the child's pid to reap, or -1 when the cache is already there.
Result<pid_t> StartMplCachePrep(const KernelConfig& config);
bool MplCacheReady(const KernelConfig& config);

}  // namespace mcpx::session
