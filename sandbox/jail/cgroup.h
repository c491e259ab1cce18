// cgroup limits and accounting for one sandbox, on cgroup v2 (delegated subtree) or v1.
//
// CgroupManager::Detect() finds which hierarchy this process can use; Create() makes one cgroup
// per sandbox with memory (swap 0), pids and cpu limits. The cgroup is removed by Destroy() or the
// destructor (after killing what is left in it). Tests point Detect() at a fake cgroupfs tree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::jail {

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // 0 = no limit
  uint64_t pids = 0;          // 0 = no limit
  double cpus = 0;            // 0 = no limit; 1.0 = one core
};

struct CgroupUsage {
  uint64_t memory_current_bytes = 0;
  uint64_t memory_peak_bytes = 0;
  uint64_t cpu_usec = 0;
  uint64_t oom_kills = 0;    // memory.events oom_kill / memory.oom_control oom_kill
  uint64_t pids_limit_hits = 0;  // pids.events max (v2) / pids.events max (v1)
};

enum class CgroupVersion { kNone, kV1, kV2 };

class Cgroup {
 public:
  virtual ~Cgroup() = default;
  virtual const std::string& name() const = 0;
  // An O_DIRECTORY fd for clone3(CLONE_INTO_CGROUP); invalid (-1) on v1.
  virtual int dir_fd() const = 0;
  virtual Status AddProcess(pid_t pid) = 0;
  virtual Result<CgroupUsage> Usage() const = 0;
  // Kills every process in the cgroup (cgroup.kill on v2, SIGKILL to cgroup.procs on v1).
  virtual Status KillAll() = 0;
  // Kills what is left and removes the directories. Idempotent.
  virtual Status Destroy() = 0;
};

// What `doctor` prints about cgroups.
struct CgroupReport {
  CgroupVersion version = CgroupVersion::kNone;
  bool usable = false;            // Create() is expected to work
  std::string base;               // where our cgroups go
  std::vector<std::string> controllers;  // usable controllers (memory, pids, cpu)
  std::string detail;             // one line: what was found
  std::string fix;                // how to make it usable, when it is not
};

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;

  // Detects the hierarchy under `fs_root` (normally /sys/fs/cgroup) using `proc_self_cgroup`
  // (normally /proc/self/cgroup). Never fails: an unusable setup yields a manager whose report
  // says why and whose Create() returns kFailedPrecondition.
  static std::unique_ptr<CgroupManager> Detect(const std::string& fs_root = "/sys/fs/cgroup",
                                               const std::string& proc_self_cgroup =
                                                   "/proc/self/cgroup");

  virtual CgroupVersion version() const = 0;
  virtual const CgroupReport& report() const = 0;
  // name: a unique leaf name such as "mcpx-<pid>-<n>".
  virtual Result<std::unique_ptr<Cgroup>> Create(const std::string& name,
                                                 const CgroupLimits& limits) = 0;
};

}  // namespace mcpx::jail
