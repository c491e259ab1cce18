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
#include <string_view>
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

std::string_view CgroupVersionName(CgroupVersion version);  // "none", "v1", "v2"

// File operations on a cgroup tree. This base class talks to the real cgroupfs; tests derive a
// fake that emulates what the kernel does on mkdir/rmdir/kill inside a plain temp directory.
class CgroupFs {
 public:
  virtual ~CgroupFs() = default;
  virtual bool Exists(const std::string& path) const;
  // access(W_OK): false when not delegated to us or mounted read-only.
  virtual bool Writable(const std::string& path) const;
  virtual Result<std::string> Read(const std::string& path) const;
  // One write(2) of the whole value, as cgroupfs expects.
  virtual Status Write(const std::string& path, std::string_view value);
  virtual Status Mkdir(const std::string& path);  // errno EEXIST when it exists
  virtual Status Rmdir(const std::string& path);
  virtual Result<UniqueFd> OpenDir(const std::string& path) const;
  virtual Status Kill(pid_t pid, int sig);  // ESRCH counts as success
};

struct CgroupDetectOptions {
  std::string fs_root = "/sys/fs/cgroup";
  std::string proc_self_cgroup = "/proc/self/cgroup";
  // false: only look (doctor); create nothing and move nothing.
  bool setup = true;
  std::shared_ptr<CgroupFs> fs;  // null: the real cgroupfs
};

// One line of /proc/self/cgroup: "4:memory:/a/b" or "0::/a/b" (v2: empty controllers).
struct ProcCgroupEntry {
  std::string controllers;  // "memory", "cpu,cpuacct", "name=systemd", "" for v2
  std::string path;         // always starts with '/'
};
Result<std::vector<ProcCgroupEntry>> ParseProcSelfCgroup(std::string_view text);
// The value of `key` in a "key value" per line file (memory.events, cpu.stat, pids.events,
// memory.oom_control). nullopt when the key is absent or not a number.
std::optional<uint64_t> ReadKeyedCounter(std::string_view text, std::string_view key);
// A file holding one number ("1234\n"), e.g. memory.current.
std::optional<uint64_t> ParseCounter(std::string_view text);

inline constexpr uint64_t kCpuPeriodUs = 100000;
// CPU quota per kCpuPeriodUs for `cpus` cores (v1 cpu.cfs_quota_us); at least the kernel's 1 ms.
uint64_t CpuQuotaUs(double cpus);
// v2 cpu.max "quota period": 1.0 -> "100000 100000", 0 (no limit) -> "max 100000".
std::string CpuMaxValue(double cpus);

// Shared by the v1 and v2 implementations.
Result<std::vector<pid_t>> ReadCgroupPids(const CgroupFs& fs, const std::string& procs_file);
// SIGKILLs whatever the procs files list, again and again (processes may fork meanwhile), until
// they are all empty or `rounds` (about 1 ms each) are used up.
Status KillUntilEmpty(CgroupFs& fs, const std::vector<std::string>& procs_files, int rounds);
// rmdir, retrying briefly on EBUSY (the kernel marks a cgroup unpopulated slightly after its last
// task exits). A missing directory counts as removed.
Status RemoveCgroupDir(CgroupFs& fs, const std::string& dir);
// A sandbox cgroup's name is one path component: not empty, not "." or "..", no '/'.
Status CheckCgroupName(const std::string& name);

class Cgroup {
 public:
  virtual ~Cgroup() = default;
  virtual const std::string& name() const = 0;
  // An O_DIRECTORY fd for clone3(CLONE_INTO_CGROUP); invalid (-1) on v1.
  virtual int dir_fd() const = 0;
  // The cgroup's directories (one on v2, one per hierarchy on v1), for diagnostics and tests.
  virtual std::vector<std::string> dirs() const { return {}; }
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
  // Same, with a dry-run mode for `doctor` and an injectable fs for tests. With setup = true, on
  // v2 this moves the calling process into <own cgroup>/mcpx-server and enables controllers for
  // <own cgroup>/mcpx-sandboxes; on v1 it creates mcpx-<pid> under our cgroup in each hierarchy.
  static std::unique_ptr<CgroupManager> Detect(const CgroupDetectOptions& opts);

  virtual CgroupVersion version() const = 0;
  virtual const CgroupReport& report() const = 0;
  // name: a unique leaf name such as "mcpx-<pid>-<n>".
  virtual Result<std::unique_ptr<Cgroup>> Create(const std::string& name,
                                                 const CgroupLimits& limits) = 0;
};

}  // namespace mcpx::jail
