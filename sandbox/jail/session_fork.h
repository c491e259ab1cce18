// A session forked from a zygote: a process that has already imported the policy's preload
// modules (session/zygote.h) forks, and the child enters namespaces, a cgroup and limits of its
// own before it runs a line of user code. The layers are the cold sandbox's (jail.h), applied by
// the same steps (child_steps.h); docs/SECURITY.md "Forked sessions" says where the two differ.
//
//   zygote ──fork──▶ C: unshare user, mount, PID, net, IPC, UTS; map its own uid/gid 1:1
//                    └─fork─▶ init (PID 1): cgroup, cgroup ns, hostname, user-ns limits, /proc,
//                             /tmp, /dev/shm, loopback, rlimits, setsid, fds, its pidfd to the
//                             server, capabilities, no_new_privs, Landlock, seccomp
//                             └─fork─▶ the session's kernel: EnterSession returns here
//
// C exits at once (the zygote reaps it); init is reparented to the zygote's init, which reaps
// it. The server is no one's parent here: it gets init's pidfd on the report socket
// (kInitPidfdNote), and init's exit code on the note pipe (InitWatch::note_exit).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "jail/landlock.h"
#include "jail/mini_init.h"
#include "jail/mounts.h"
#include "jail/rlimits.h"
#include "jail/seccomp_compiler.h"
#include "jail/userns.h"
#include "jail/userns_limits.h"
#include "util/status.h"

namespace mcpx::jail {

// What every session of one zygote gets: the server builds it once (BuildSessionPlan, jail.h)
// and sends it to the zygote (EncodeSessionPlan), which decodes it before its first fork.
struct SessionPlan {
  uid_t uid = kSandboxUid;  // the ids inside, mapped 1:1 in the session's own user namespace
  gid_t gid = kSandboxGid;
  std::string hostname = "sandbox";
  Limits limits;  // what the plans below are built from (the policy's)
  bool in_cgroup = true;
  MountPlan mounts;
  RlimitPlan rlimits;
  UserNsLimitPlan userns_limits;
  int last_cap = 40;
  LandlockPlan landlock;
  std::vector<SeccompProgram> seccomp;
  InitWatch init;  // note_fd comes with each session
  std::string cwd = kWorkspacePath;
};

// Fills the mount, rlimit and user-namespace plans from `limits` and `in_cgroup`: the server
// (BuildSessionPlan) and the zygote (DecodeSessionPlan) build them alike.
void BuildLimitPlans(SessionPlan& plan);

// JSON, with every program's instructions; the limits in the policy file's form.
std::string EncodeSessionPlan(const SessionPlan& plan);
// Rebuilds the mount, rlimit and user-namespace plans from the limits (BuildLimitPlans).
Result<SessionPlan> DecodeSessionPlan(std::string_view json);

// One session's fds, as the zygote received them from the server.
struct SessionFds {
  int report = -1;          // SOCK_SEQPACKET: failure records, then init's pidfd (kInitPidfdNote)
  int control = -1;         // becomes fd 3
  int out = -1;             // becomes fd 1
  int err = -1;             // becomes fd 2
  int note = -1;            // init's note pipe (write end)
  std::vector<int> cgroup;  // the session's cgroup files, each written "0" (JoinCgroupInChild)
};

// The note that carries init's pidfd.
inline constexpr char kInitPidfdNote = 'I';

// Runs in the zygote's freshly forked child, which must be single-threaded and hold nothing
// else of value. Returns only in the session's kernel, with every layer in place, the session's
// fds at 1, 2 and 3, everything else closed, and the signal mask and dispositions the zygote
// had. Anywhere else it ends the process: a failed step is reported on fds.report first.
void EnterSession(SessionPlan& plan, const SessionFds& fds);

}  // namespace mcpx::jail
