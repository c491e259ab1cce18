// What this machine supports, probed by trying rather than by reading version numbers.
//
// Only `doctor` uses it, to print what works and how to fix what does not. Spawn never consults
// these probes: it takes its fallbacks from what it is given at spawn time (no CgroupManager ->
// RLIMIT_AS bounds memory, rlimits.h; LandlockAbi() == 0 -> mounts only, landlock.h). Probing
// forks one short-lived child for the namespace checks and never changes the calling process.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace mcpx::jail {

// errno of each namespace step tried in a throwaway child; 0 = worked, -1 = not reached.
struct NamespaceProbe {
  int user = -1;           // unshare(CLONE_NEWUSER)
  int uid_map = -1;        // writing setgroups/uid_map/gid_map for ourselves
  int mount = -1;          // unshare(CLONE_NEWNS)
  int mount_private = -1;  // mount(MS_REC|MS_PRIVATE) on "/": needs CAP_SYS_ADMIN in the userns
                           // (Ubuntu's AppArmor userns restriction fails here, not at unshare)
  int pid = -1;
  int net = -1;
  int ipc = -1;
  int uts = -1;
  int cgroup = -1;
  std::string error;  // why the probe itself could not run
};

struct MachineSupport {
  std::string kernel_release;  // uname -r
  uid_t uid = 0;
  uid_t euid = 0;

  // User namespaces: the knobs that decide whether an unprivileged user gets one.
  bool userns_in_kernel = false;                       // /proc/self/ns/user exists
  std::optional<long> max_user_namespaces;             // /proc/sys/user/max_user_namespaces
  std::optional<long> unprivileged_userns_clone;       // Debian/older Ubuntu sysctl
  std::optional<long> apparmor_restrict_unprivileged;  // Ubuntu 23.10+ sysctl
  NamespaceProbe ns;

  // seccomp: filter mode accepted by the kernel (probe with a NULL program: EFAULT = supported).
  bool seccomp_filter = false;
  int seccomp_mode = -1;      // PR_GET_SECCOMP of this process: 0 none, 2 already filtered
  int landlock_abi = 0;       // 0: not available
  int landlock_errno = 0;     // ENOSYS (not built), EOPNOTSUPP (disabled at boot)
  bool no_new_privs = false;  // PR_GET_NO_NEW_PRIVS answered
  bool cap_ambient = false;   // PR_CAP_AMBIENT answered (4.3+)
  bool overlayfs = false;     // "overlay" in /proc/filesystems
  bool openat2 = false;
  bool clone3 = false;
  bool pidfd = false;

  bool userns_works() const { return ns.user == 0 && ns.uid_map == 0; }
  bool mountns_works() const { return userns_works() && ns.mount == 0 && ns.mount_private == 0; }
};

MachineSupport ProbeMachineSupport();

// Tries to import `modules` with `python` (each separately), bounded by timeout_ms.
struct PythonProbe {
  bool ran = false;     // the interpreter started and answered
  std::string version;  // "3.11.2"
  std::string error;    // why it did not run, or stderr's last line
  struct Module {
    std::string name;
    bool ok = false;
    std::string detail;  // version, or the exception
  };
  std::vector<Module> modules;
};

PythonProbe ProbePython(const std::string& python, const std::vector<std::string>& modules,
                        int timeout_ms);

}  // namespace mcpx::jail
