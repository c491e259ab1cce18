// Everything a server (or `exec`) prepares once before starting Python in a sandbox, and the one
// place that says how Python is started there (argv aside): paths, mounts, environment.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "jail/cgroup.h"
#include "jail/jail.h"
#include "jail/policy.h"
#include "session/server_policy.h"
#include "util/status.h"

namespace mcpx::session {

// Where the kernel's pieces are on the host; shared by every kernel of a server.
struct KernelConfig {
  ServerPolicyPtr policy;     // loaded, so compiled: the jail part carries its seccomp programs
  std::string rootfs_dir;     // rootfs/ (manifest, etc/)
  std::string workspace;      // host workspace, /workspace inside
  std::string packages_dir;   // package overlay, read-only at /opt/mcpx/packages
  std::string kernel_dir;     // sandbox/kernel, read-only at /opt/mcpx/kernel
  std::string mpl_cache_dir;  // prepared matplotlib cache, read-only at /opt/mcpx/mpl-cache
  jail::CgroupManager* cgroups = nullptr;
  // The zygote's extension module (sandbox/zygote), read-only at kZygoteModuleInside; empty: none
  // was built, and every kernel starts cold.
  std::string zygote_module;
};

inline constexpr const char* kZygoteModuleInside = "/opt/mcpx/zygote/_mcpx_fork.so";

inline constexpr const char* kMplCacheInside = "/opt/mcpx/mpl-cache";

struct RuntimePaths {
  std::string rootfs_dir;
  std::string kernel_dir;
  std::string state_dir;  // <state>/packages, <state>/mpl-cache live here
  std::string workspace;
};

// Creates the state folders and fills a KernelConfig. The font cache is not built here (it takes
// seconds): see StartMplCachePrep.
Result<KernelConfig> MakeKernelConfig(ServerPolicyPtr policy, const RuntimePaths& paths,
                                      jail::CgroupManager* cgroups);

// Python `argv` in a sandbox under `config`: the mounts, the cwd (/workspace), the cgroup
// manager, and the environment every Python there gets (library thread pools sized to the CPU
// quota, malloc arenas capped when RLIMIT_AS bounds memory). Callers add fds and their own env.
jail::SpawnRequest PythonSpawnRequest(const KernelConfig& config, std::vector<std::string> argv);
// A kernel's (`script` mcpx_kernel.py) or a zygote's (mcpx_zygote.py): the overlay's python3 -s
// on /opt/mcpx/kernel/<script>, its channel at fd 3 named by `fd_variable`, the policy's preloads
// and the matplotlib cache. The caller adds the fds.
jail::SpawnRequest KernelSpawnRequest(const KernelConfig& config, const std::string& script,
                                      const std::string& fd_variable);

// Starts building matplotlib's font cache into config.mpl_cache_dir when it is missing, by
// running the kernel's prepare_mpl_cache.py on the host (our own script, no user code; seconds,
// once). Returns the child's pid to reap, or -1 when the cache is already there.
Result<pid_t> StartMplCachePrep(const KernelConfig& config);
bool MplCacheReady(const KernelConfig& config);

}  // namespace mcpx::session
