// cgroup v2: a delegated subtree under our own cgroup.
//
// Layout under our cgroup <own> (from "0::<own>" in /proc/self/cgroup):
//   <own>/mcpx-server       leaf the server process moves into ("no internal processes" rule)
//   <own>/mcpx-sandboxes/   parent with +memory +pids (+cpu) in cgroup.subtree_control
//   <own>/mcpx-sandboxes/<name>   one per sandbox, joined with clone3(CLONE_INTO_CGROUP)
#pragma once

#include <memory>
#include <string>

#include "jail/cgroup.h"

namespace mcpx::jail {

inline constexpr char kV2ServerLeaf[] = "mcpx-server";
inline constexpr char kV2SandboxParent[] = "mcpx-sandboxes";

// True when `dir`/cgroup.controllers lists memory and pids.
bool V2HasControllers(const CgroupFs& fs, const std::string& dir);

// unified: the cgroup2 mount; own_path: our path in it. pure_v2: the mount is /sys/fs/cgroup itself
// (no v1 hierarchies to fall back to).
std::unique_ptr<CgroupManager> DetectV2(const CgroupDetectOptions& opts, const std::string& unified,
                                        const std::string& own_path, bool pure_v2);

}  // namespace mcpx::jail
