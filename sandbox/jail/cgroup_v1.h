// cgroup v1: one directory per hierarchy (memory, pids, cpu, cpuacct).
//
// Under our own cgroup in each hierarchy (from /proc/self/cgroup) we create mcpx-<pid>/, and one
// child per sandbox in it. v1 has no delegation model worth the name: this works as root (or where
// an administrator made those directories writable); otherwise limits fall back to rlimits.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jail/cgroup.h"

namespace mcpx::jail {

// Whether the comma-separated controller list of a /proc/self/cgroup line contains `name`.
bool IsV1Controller(std::string_view controllers, std::string_view name);

// Where the hierarchy with these controllers is mounted: fs_root/"cpu,cpuacct" or fs_root/cpu
// (systemd links each controller name to the joint mount). Empty when absent.
std::string V1HierarchyDir(const CgroupFs& fs, const std::string& fs_root,
                           std::string_view controllers);

std::unique_ptr<CgroupManager> DetectV1(const CgroupDetectOptions& opts,
                                        const std::vector<ProcCgroupEntry>& entries);

}  // namespace mcpx::jail
