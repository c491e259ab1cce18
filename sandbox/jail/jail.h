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
};

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
  std::optional<ExitStatus> exit_;
  UniqueFd init_note_;  // read end of init's note pipe
  friend Result<Sandbox> Spawn(const SpawnRequest& request);
};

Result<Sandbox> Spawn(const SpawnRequest& request);

// What bounds a sandbox's CPU rate given the cgroup manager Spawn gets (null: none): "cgroup" (a
// cpu quota), "init" (the sandbox's init meters and stops it, mini_init.h), "" (no limit).
std::string_view CpuLimitBy(const Limits& limits, const CgroupManager* cgroups);

}  // namespace mcpx::jail
