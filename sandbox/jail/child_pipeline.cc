#include "jail/child_pipeline.h"

#include <unistd.h>

#include "jail/caps.h"
#include "jail/net.h"

namespace mcpx::jail {

#define STEP(expr) CHILD_STEP(sync_fd, expr)

void RunChild(ChildPlan& plan, int sync_fd) {
  STEP(ResetSignals());
  // The parent writes our id maps (and on v2 has cloned us into our cgroup); nothing below works
  // before that.
  STEP(WaitForParent(sync_fd));
  // Before any other work, so that all of the setup below is charged to the sandbox's limits.
  STEP(JoinCgroupInChild(plan.cgroup_tasks));
  // With the server's own file access, before the uid change below takes it away. Sources are
  // fds from here on: no host path is resolved again.
  STEP(OpenMountSourcesInChild(plan.mounts));
  // Inside ids before any file is created (new inodes need a mapped owner).
  STEP(UserNsInChild(plan.ids));
  // After the uid change: changing credentials clears the parent-death signal.
  STEP(DieWithParent());
  // After the parent has written our id maps (it needs /proc/<pid>/uid_map, owned by root once
  // we are not dumpable).
  STEP(NotDumpable());
  STEP(HideServerArgs(plan.server_args));
  // Now that we are in our cgroup, so that it becomes our cgroup root.
  STEP(UnshareCgroup(plan.unshare_cgroup));
  STEP(SetHostname(plan.hostname));
  // Needs CAP_SYS_RESOURCE in our user namespace and a writable /proc/sys: the server's, before
  // the mounts make ours read-only (the values belong to our user namespace either way).
  STEP(UserNsLimitsInChild(plan.userns_limits));
  // Mounts need CAP_SYS_ADMIN in our namespace; they end with pivot_root and a read-only root.
  STEP(MountsInChild(plan.mounts));
  // Needs CAP_NET_ADMIN in our net namespace.
  STEP(LoopbackUpInChild());
  // Once loopback is up, with the namespace's own view; before MapFds moves the report socket.
  STEP(ListenerToParentInChild(plan.listen_port, sync_fd));
  // All but RLIMIT_AS, which the real process sets for itself before execve (rlimits.h).
  STEP(RlimitsInChild(plan.rlimits));
  STEP(NewSession());
  // After pivot_root so stdio can point at the new root's /dev/null.
  STEP(MapFds(plan.fds, plan.fd_scratch, &plan.init.note_fd, &sync_fd));
  STEP(ChangeDir(plan.exec.cwd));
  // Dropping the bounding set needs CAP_SETPCAP, so it precedes clearing the capabilities.
  STEP(DropBoundingAndAmbientInChild(plan.last_cap));
  // Before Landlock and seccomp: both require it from a process without CAP_SYS_ADMIN.
  STEP(NoNewPrivs());
  // After pivot_root: Landlock rules hold the new root's paths.
  STEP(LandlockInChild(plan.landlock));
  STEP(ClearCapsInChild());
  // Last: every syscall above is done and need not be allowed by the policy. Audited, from here
  // on a call the profile denies waits for the server's answer (Spawn serves them meanwhile).
  STEP(InstallSeccomp(plan.seccomp, sync_fd));
  RunInit(plan.exec, plan.rlimits, plan.init, sync_fd);
}

}  // namespace mcpx::jail
