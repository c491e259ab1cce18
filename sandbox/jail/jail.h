// Starts a process inside the full sandbox (docs/SECURITY.md "The layers", docs/ARCHITECTURE.md).
//
//   SpawnRequest req;            // policy, paths, argv, env, fds, cgroup manager
//   ASSIGN_OR_RETURN(Sandbox sb, Spawn(req));
//   ... watch sb.pidfd in an epoll loop, sb.Signal(SIGINT) to interrupt, sb.Kill() to end ...
//   ASSIGN_OR_RETURN(ExitStatus st, sb.Wait());
//
// Spawn returns once the real process has exec'd, or with a Status naming the failed setup step
// and its errno ("sandbox setup failed at step 'bind /workspace': ENOENT (No such file or
// directory)").
#pragma once

#include <sys/types.h>

#include <cstdint>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jail/cgroup.h"
#include "jail/child_pipeline.h"
#include "jail/policy.h"
#include "jail/seccomp_audit.h"
#include "jail/seccomp_compiler.h"
#include "jail/session_fork.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::jail {

struct SpawnRequest {
  PolicyPtr policy;                // required
  std::string rootfs_dir;          // holds `manifest` and etc/
  std::string workspace;           // host dir -> /workspace read-write (empty: none)
  std::string packages;            // host dir -> /opt/mcpx/packages, read-only (empty: not mounted)
  bool packages_writable = false;  // the installer's jail: the overlay writable (no workspace)
  std::string kernel_dir;          // host dir -> /opt/mcpx/kernel, read-only (empty: not mounted)
  std::vector<BindMount> extra_binds;  // in addition to policy->extra_binds

  std::vector<std::string> argv;  // argv[0] is the program's path inside the sandbox
  std::vector<std::string> env;   // "KEY=VALUE", exactly; nothing is inherited
  std::string cwd;                // default: /workspace (/tmp without a workspace)
  // The folder whose owner the sandbox's host identity follows (userns.h PlanIdMap); default:
  // the workspace. The installer's jail has no workspace and follows the package overlay.
  std::string identity_dir;
  std::vector<FdMapping> fds;  // parent fd -> child fd; everything else is closed

  // A listening socket on 127.0.0.1:listen_port inside the sandbox's net namespace, handed to
  // the caller in Sandbox::listener (the installer's proxy port). 0: none.
  uint16_t listen_port = 0;

  // Audit the policy's seccomp profile (`exec --audit`, seccomp_audit.h): its denials become
  // notifications, answered with the profile's errno by Sandbox::audit, which calls
  // `audit_hook` for each one first. Spawn serves them itself until it returns (the setup's own
  // calls are audited too); after that the caller polls audit->fd() and calls ServeOne(), until
  // the sandbox has exited: a denied call blocks until it is answered.
  bool seccomp_audit = false;
  SeccompAuditor::Hook audit_hook;

  CgroupManager* cgroups = nullptr;  // null: no cgroup, RLIMIT_AS bounds memory instead
  std::string cgroup_name;           // default: mcpx-<server pid>-<counter>

  // The sandbox of a zygote (session_fork.h): the outer layers only. Its /proc is unmasked, its
  // user namespace may hold one nested namespace per session, and it gets no Landlock, no seccomp
  // and none of the rlimits counted per user (each session applies all of those itself, and would
  // otherwise share the zygote's count); its init has no watchdog (the sessions' inits watch
  // theirs) and outlives the zygote while sessions remain.
  bool zygote = false;
};

// The most sessions one zygote can fork at a time (its user namespace's limit on nested ones).
inline constexpr uint64_t kZygoteSessions = 256;

// How the sandbox ended. Init reports its real process's end as an exit code (128+signal
// when it was killed); `signal` is set only when init itself was killed (Kill()).
// `task_limit`: init's watchdog killed everything at the policy's process limit.
struct ExitStatus {
  int code = 0;
  int signal = 0;
  bool task_limit = false;
  int ShellCode() const { return signal != 0 ? 128 + signal : code; }
};

class Sandbox {
 public:
  Sandbox() = default;
  Sandbox(Sandbox&& other) noexcept;
  Sandbox& operator=(Sandbox&& other) noexcept;
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;
  ~Sandbox();

  pid_t pid = -1;                  // init (PID 1 inside), in the server's PID namespace
  UniqueFd pidfd;                  // readable when init has exited; poll it in the event loop
  std::unique_ptr<Cgroup> cgroup;  // null without a cgroup manager
  int landlock_abi = 0;            // 0: Landlock inactive
  bool seccomp = false;
  IdMap ids;
  UniqueFd listener;  // SpawnRequest::listen_port's socket, listening inside the namespace
  std::unique_ptr<SeccompAuditor> audit;  // SpawnRequest::seccomp_audit's listener and profile

  // Sends `sig` to init, which forwards SIGINT/SIGTERM/SIGHUP/SIGUSR1/SIGUSR2 to the process.
  Status Signal(int sig) const;
  // SIGKILL to init (the kernel then kills the whole PID namespace) and to the cgroup.
  void Kill();
  // Blocks until init exits and reaps it. The cgroup stays (for Usage()) until Destroy().
  Result<ExitStatus> Wait();
  // Non-blocking: nullopt while it runs.
  Result<std::optional<ExitStatus>> TryWait();
  // Kills what is left, reaps, removes the cgroup. Idempotent; the destructor calls it.
  void Destroy();

 private:
  Result<std::optional<ExitStatus>> WaitImpl(bool block);
  // A forked session's: waits on the pidfd, and reads the exit code from init's note.
  Result<std::optional<ExitStatus>> WaitAdopted(bool block);
  std::optional<ExitStatus> exit_;
  UniqueFd init_note_;    // read end of init's note pipe
  bool adopted_ = false;  // init is not our child (AdoptSession)
  friend Result<Sandbox> Spawn(const SpawnRequest& request);
  friend Result<Sandbox> AdoptSession(UniqueFd report, UniqueFd init_note,
                                      std::unique_ptr<Cgroup> cgroup, const SessionPlan& plan);
};

Result<Sandbox> Spawn(const SpawnRequest& request);

// The plan a zygote spawned with `request` (zygote = true) forks its sessions with: the layers a
// cold sandbox of the same request (zygote = false) would get.
Result<SessionPlan> BuildSessionPlan(const SpawnRequest& request);

// A session the zygote is forking (session_fork.h): waits on `report` until the setup is over,
// and returns the session as a Sandbox whose init the server can signal, kill and wait for, like
// a spawned one. `cgroup` is the one the session joined; `plan` says which layers it has.
Result<Sandbox> AdoptSession(UniqueFd report, UniqueFd init_note, std::unique_ptr<Cgroup> cgroup,
                             const SessionPlan& plan);

// The files a process writes "0" into to move itself into `cgroup` (JoinCgroupInChild, opened
// here so that the kernel checks the server's credentials): each v1 hierarchy's `tasks`, or v2's
// `cgroup.procs`. Empty when one cannot be opened.
std::vector<UniqueFd> OpenCgroupJoinFiles(const Cgroup& cgroup, CgroupVersion version);

// What bounds a sandbox's CPU rate given the cgroup manager Spawn gets (null: none): "cgroup" (a
// cpu quota), "init" (the sandbox's init meters and stops it, mini_init.h), "" (no limit).
std::string_view CpuLimitBy(const Limits& limits, const CgroupManager* cgroups);

}  // namespace mcpx::jail
