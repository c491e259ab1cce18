// The sandbox's mount namespace: a private tmpfs root built from the rootfs manifest plus the
// jail's own mounts, then pivot_root into it, the old root detached and the root made read-only.
//
// BuildMountPlan (parent) turns everything into a flat list of steps with every path and option
// string prepared; MountsInChild (child) only walks the list. Bind sources are opened with
// O_PATH|O_NOFOLLOW while the host tree is still visible and mounted from those fds
// (open_tree + mount_setattr + move_mount), so no source path is resolved twice; targets are
// created inside our own fresh tmpfs, which no one else can write (CVE-2021-30465 class).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jail/child_failure.h"
#include "jail/policy.h"
#include "jail/rootfs.h"
#include "util/status.h"

namespace mcpx::jail {

// Fixed paths inside the sandbox.
inline constexpr char kWorkspacePath[] = "/workspace";
inline constexpr char kPackagesPath[] = "/opt/mcpx/packages";
inline constexpr char kKernelPath[] = "/opt/mcpx/kernel";

struct MountRequest {
  std::vector<RootfsEntry> rootfs;  // from the manifest
  std::string workspace;            // host dir -> /workspace rw; empty: none
  std::string packages;             // host dir -> kPackagesPath; empty: none
  bool packages_writable = false;   // the installer's jail only; kernels see it read-only
  std::string kernel;               // host dir -> kKernelPath ro; empty: none
  std::vector<BindMount> extra_binds;
  uint64_t tmp_bytes = 0;
  uint64_t shm_bytes = 0;
  // A zygote's /proc stays unmasked: the kernel lets a session mount its own proc (and mask it)
  // only while a fully visible proc is mounted (mount_too_revealing). The zygote runs no user code.
  bool mask_proc = true;
};

struct MountStep {
  enum class Kind {
    kDir,       // mkdir target
    kFile,      // create target with content
    kSymlink,   // symlink source -> target
    kBind,      // source fd (opened in phase one) -> target, with attr flags
    kTmpfs,     // tmpfs at target with data options and MS_* flags
    kProc,      // proc at target
    kMask,      // bind source (a path in the new root, /dev/null) over target; skip if absent
    kReadOnly,  // bind target on itself, read-only; skip if absent
    kRemountRo  // remount an existing mount read-only (MS_BIND|MS_REMOUNT)
  };
  Kind kind = Kind::kDir;
  std::string label;      // what the user reads when the step fails: "bind /workspace"
  std::string source;     // host path, link text, mask source
  std::string target;     // path under the staging root
  std::string data;       // tmpfs options, file content
  uint64_t attrs = 0;     // MOUNT_ATTR_* for binds, MS_* for tmpfs
  bool nofollow = false;  // open the source with O_NOFOLLOW (writable, user-controlled folders)
  bool optional = false;  // a missing source/target is not an error
  bool directory = true;  // bind target: directory (else a file)
  int source_fd = -1;     // filled by the child in phase one
};

struct MountPlan {
  std::string stage;  // where the new root is assembled ("/tmp" of the child's copy of the host)
  std::vector<MountStep> steps;
};

Result<MountPlan> BuildMountPlan(const MountRequest& request);

// A session forked from a zygote (session_fork.h) keeps the zygote's root and mounts its own
// /proc (masked as BuildMountPlan masks it), /tmp and /dev/shm over the zygote's. Targets are
// plain paths in the zygote's root; there are no binds and no pivot.
MountPlan BuildSessionMountPlan(uint64_t tmp_bytes, uint64_t shm_bytes);

// Child, phase one: opens every bind source (O_PATH), while the host tree is visible and with
// the server's file access (a root server's fsuid is still 0 here, so root-owned 0700 parents
// of the workspace are traversable). The plan is mutable only for these fds.
ChildFailure OpenMountSourcesInChild(MountPlan& plan);
// Child, phase two: assembles the root from those fds and pivots into it.
ChildFailure MountsInChild(MountPlan& plan);
// A forked session's init (PID 1 of its namespace, which its proc shows): runs the steps of a
// BuildSessionMountPlan in place.
ChildFailure SessionMountsInChild(MountPlan& plan);

}  // namespace mcpx::jail
