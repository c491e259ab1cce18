#include "jail/jail.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "jail/caps.h"
#include "jail/fd_passing.h"
#include "jail/landlock.h"
#include "jail/mounts.h"
#include "jail/net.h"
#include "jail/rootfs.h"
#include "jail/spawn_internal.h"
#include "util/event_loop.h"
#include "util/io.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace mcpx::jail {
namespace {

constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;  // CLONE_INTO_CGROUP (5.7)

// The child's whole setup, from the go byte to its real process's execve. It takes milliseconds
// (bench/README.md); this is for a child that will never finish.
constexpr int64_t kSetupDeadlineMs = 30'000;

// struct clone_args from linux/sched.h, which clashes with glibc's <sched.h>.
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

std::string DefaultCgroupName() {
  static std::atomic<unsigned> counter{0};
  return "mcpx-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// The CPU rate init enforces itself, in thousandths of a core (0: none).
uint32_t InitCpuMillis(const Limits& limits, const CgroupManager* cgroups) {
  if (CpuLimitBy(limits, cgroups) != "init") return 0;
  const double millis = std::round(limits.cpus * 1000);  // the policy allows 0.01 to 1024 cores
  return static_cast<uint32_t>(std::clamp(millis, 1.0, 1024.0 * 1000));
}

Code CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Code::kNotFound;
    case EPERM:
    case EACCES:
    case ELOOP:
      return Code::kPermissionDenied;
    case ENOMEM:
    case ENOSPC:
    case EAGAIN:
    case EMFILE:
    case EUSERS:
      return Code::kResourceExhausted;
    default:
      return Code::kFailedPrecondition;
  }
}

Status ValidateFds(std::vector<FdMapping>& fds) {
  std::sort(fds.begin(), fds.end(),
            [](const FdMapping& a, const FdMapping& b) { return a.child_fd < b.child_fd; });
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].parent_fd < 0 || fds[i].child_fd < 0 || fds[i].child_fd > 1000) {
      return InvalidArgument("fd mapping " + std::to_string(fds[i].parent_fd) + " -> " +
                             std::to_string(fds[i].child_fd) + " is out of range");
    }
    if (i > 0 && fds[i].child_fd == fds[i - 1].child_fd) {
      return InvalidArgument("child fd " + std::to_string(fds[i].child_fd) + " mapped twice");
    }
  }
  return Status::Ok();
}

// The server's argv strings, read once.
AddressRange ServerArgArea() {
  static const AddressRange area = OwnArgArea();
  return area;
}

}  // namespace

// What the mounts make writable, Landlock allows writing (and nothing else).
LandlockPlan SandboxLandlock(const SpawnRequest& req, int landlock_abi) {
  std::vector<std::string> writable;
  if (!req.packages.empty() && req.packages_writable) writable.push_back(kPackagesPath);
  for (const auto* binds : {&req.policy->extra_binds, &req.extra_binds}) {
    for (const BindMount& b : *binds) {
      if (b.writable) writable.push_back(b.target);
    }
  }
  return BuildLandlockPlan({.enabled = req.policy->landlock,
                            .workspace = !req.workspace.empty(),
                            .writable = std::move(writable)},
                           landlock_abi);
}

std::string SandboxCwd(const SpawnRequest& req) {
  return !req.cwd.empty() ? req.cwd : req.workspace.empty() ? "/tmp" : kWorkspacePath;
}

InitWatch SandboxInitWatch(const Limits& limits, int note_fd, const CgroupManager* cgroups) {
  return {ProcessLimit(limits), note_fd, InitCpuMillis(limits, cgroups), sysconf(_SC_CLK_TCK)};
}

// A failure record from a child's setup, as the error the user reads.
Status SetupFailure(FailureRecord rec, const std::string& program, const char* what) {
  rec.step.back() = '\0';
  std::string step = rec.step.data();
  std::string hint;
  if (step == "install seccomp filter" || step == "execve") {
    hint = step == "execve" ? " (is " + program + " in the sandbox root?)" : "";
  } else if (step.rfind("bind ", 0) == 0 && rec.err == EACCES) {
    hint = " (the source must be reachable with the server's owner permissions)";
  } else if (rec.err == EPERM || rec.err == EACCES) {
    hint = " (restricted user namespaces? run `mcp-executor doctor`)";
  }
  return ErrnoStatus(CodeForErrno(rec.err),
                     std::string(what) + " setup failed at step '" + step + "'" + hint, rec.err);
}

namespace {

Result<ChildPlan> BuildChildPlan(const SpawnRequest& req, const IdMap& ids, bool memory_in_cgroup,
                                 int landlock_abi) {
  const Policy& policy = *req.policy;
  ChildPlan plan;
  plan.ids = ids;
  plan.server_args = ServerArgArea();

  MountRequest m;
  ASSIGN_OR_RETURN(m.rootfs, LoadRootfsManifest(req.rootfs_dir));
  m.workspace = req.workspace;
  m.packages = req.packages;
  m.packages_writable = req.packages_writable;
  m.kernel = req.kernel_dir;
  m.extra_binds = policy.extra_binds;
  m.extra_binds.insert(m.extra_binds.end(), req.extra_binds.begin(), req.extra_binds.end());
  m.tmp_bytes = policy.limits.tmp_bytes;
  m.shm_bytes = policy.limits.shm_bytes;
  m.mask_proc = !req.zygote;
  ASSIGN_OR_RETURN(plan.mounts, BuildMountPlan(m));

  plan.rlimits = req.zygote ? BuildZygoteRlimitPlan(policy.limits, memory_in_cgroup)
                            : BuildRlimitPlan(policy.limits, memory_in_cgroup);
  plan.userns_limits = req.zygote ? BuildZygoteUserNsLimitPlan(kZygoteSessions)
                                  : BuildUserNsLimitPlan(policy.limits);
  ASSIGN_OR_RETURN(plan.last_cap, LastCapFromParent());
  if (!req.zygote) {
    plan.landlock = SandboxLandlock(req, landlock_abi);
    if (req.seccomp_audit) {
      ASSIGN_OR_RETURN(plan.seccomp, AuditPrograms(policy.seccomp_programs));
    } else {
      plan.seccomp = policy.seccomp_programs;
    }
  }

  plan.fds = req.fds;
  RETURN_IF_ERROR(ValidateFds(plan.fds));
  plan.fd_scratch.assign(plan.fds.size(), -1);

  plan.listen_port = req.listen_port;
  plan.exec.path = req.argv.front();
  plan.exec.args = req.argv;
  plan.exec.env = req.env;
  plan.exec.cwd = SandboxCwd(req);
  FinishExecPlan(plan.exec);
  return plan;
}

// clone3 into every namespace (and straight into the cgroup when it has a v2 dir fd); plain
// clone when clone3 is ENOSYS (old kernel, or a container's seccomp). Returns 0 in the child.
// *into_cgroup tells whether the kernel placed the child in the cgroup (CLONE_INTO_CGROUP).
Result<pid_t> CloneChild(int cgroup_fd, UniqueFd* pidfd, bool* into_cgroup) {
  const uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                         CLONE_NEWNET | CLONE_PIDFD;
  int fd = -1;
  CloneArgs args{};
  args.flags = flags | (cgroup_fd >= 0 ? kCloneIntoCgroup : 0);
  args.pidfd = reinterpret_cast<uint64_t>(&fd);
  args.exit_signal = SIGCHLD;
  args.cgroup = cgroup_fd >= 0 ? static_cast<uint64_t>(cgroup_fd) : 0;
  *into_cgroup = cgroup_fd >= 0;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0 && errno == ENOSYS) {
    *into_cgroup = false;
    pid = syscall(SYS_clone, flags | SIGCHLD, nullptr, &fd, nullptr, 0);
  }
  if (pid < 0) {
    const int err = errno;
    return ErrnoStatus(CodeForErrno(err),
                       "cannot create the sandbox's namespaces (clone3)" +
                           std::string(err == EPERM || err == ENOSPC || err == EUSERS
                                           ? " (user namespaces disabled or exhausted? run "
                                             "`mcp-executor doctor`)"
                                           : ""),
                       err);
  }
  if (pid > 0) pidfd->reset(fd);
  return static_cast<pid_t>(pid);
}

}  // namespace

// One message of the setup socket: a FailureRecord, or a note with its fd (`passed`).
ssize_t ReceiveReport(int fd, FailureRecord* rec, UniqueFd* passed) {
  return ReceiveWithFd(fd, rec, sizeof(*rec), passed, MSG_DONTWAIT);
}

// Until the child reports a failure or its real process has exec'd (EOF), at most
// kSetupDeadlineMs. On a timeout the caller's Sandbox kills and reaps the child. An audited
// sandbox's notifications are answered meanwhile: the setup's last steps run under the audited
// profile and would wait for their answer forever.
Status WaitForChildReport(int fd, SeccompAuditor* audit) {
  const int64_t deadline = EventLoop::NowMs() + kSetupDeadlineMs;
  for (;;) {
    if (audit == nullptr) {
      const int r = PollUntil(fd, POLLIN, deadline);
      if (r > 0) return Status::Ok();
      if (r < 0) break;
      return {Code::kDeadlineExceeded, "sandbox setup did not finish within " +
                                           std::to_string(kSetupDeadlineMs / 1000) +
                                           " s; the stuck sandbox was killed"};
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {audit->fd(), POLLIN, 0}};
    const int64_t left = deadline - EventLoop::NowMs();
    const int r = poll(fds, 2, static_cast<int>(std::max<int64_t>(left, 0)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if ((fds[1].revents & POLLIN) != 0) RETURN_IF_ERROR(audit->ServeOne());
    if (fds[0].revents != 0) return Status::Ok();
    // The listener hung up (no task left under the filter): the report socket decides now.
    if ((fds[1].revents & (POLLHUP | POLLERR)) != 0) audit = nullptr;
    if (r == 0) audit = nullptr;  // past the deadline: one last PollUntil says so
  }
  return ErrnoStatus(Code::kInternal, "sandbox setup: cannot wait for the child's report");
}

std::vector<UniqueFd> OpenCgroupJoinFiles(const Cgroup& cgroup, CgroupVersion version) {
  const char* file = version == CgroupVersion::kV1 ? "/tasks" : "/cgroup.procs";
  std::vector<UniqueFd> fds;
  for (const std::string& dir : cgroup.dirs()) {
    UniqueFd fd(open((dir + file).c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return {};
    fds.push_back(std::move(fd));
  }
  return fds;
}

// Both cgroup versions write cpu.max / cpu.cfs_quota_us exactly when the manager reports the cpu
// controller (v2: delegated to us; v1: a cpu hierarchy we may write).
std::string_view CpuLimitBy(const Limits& limits, const CgroupManager* cgroups) {
  if (!(limits.cpus > 0)) return "";
  if (cgroups != nullptr) {
    const auto& have = cgroups->report().controllers;
    if (std::find(have.begin(), have.end(), "cpu") != have.end()) return "cgroup";
  }
  return "init";
}

Result<Sandbox> Spawn(const SpawnRequest& req) {
  if (!req.policy) return InvalidArgument("spawn: no policy");
  if (req.argv.empty() || req.argv.front().empty() || req.argv.front()[0] != '/') {
    return InvalidArgument("spawn: argv[0] must be an absolute path inside the sandbox");
  }
  const Policy& policy = *req.policy;
  if (policy.seccomp_programs.empty()) {
    return InvalidArgument("spawn: policy '" + policy.name +
                           "' has no compiled seccomp filters (load it with LoadPolicy or "
                           "ParsePolicy)");
  }
  Sandbox sb;
  ASSIGN_OR_RETURN(sb.ids, PlanIdMap(req.identity_dir.empty() ? req.workspace : req.identity_dir));
  if (req.cgroups != nullptr) {
    CgroupLimits limits{policy.limits.memory_bytes, policy.limits.pids, policy.limits.cpus};
    auto cg = req.cgroups->Create(req.cgroup_name.empty() ? DefaultCgroupName() : req.cgroup_name,
                                  limits);
    if (!cg.ok()) return cg.status().Annotate("sandbox setup failed at step 'create cgroup'");
    sb.cgroup = std::move(cg).value();
  }
  sb.landlock_abi = policy.landlock && !req.zygote ? LandlockAbi() : 0;
  ASSIGN_OR_RETURN(ChildPlan plan,
                   BuildChildPlan(req, sb.ids, sb.cgroup != nullptr, sb.landlock_abi));
  sb.seccomp = !plan.seccomp.empty();

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus(Code::kResourceExhausted, "cannot create the setup socket");
  }
  UniqueFd parent_end(pair[0]);
  UniqueFd child_end(pair[1]);

  // Init watches the process limit and says on this pipe when it struck; without a cgroup cpu
  // quota it also holds the CPU rate.
  int note[2];
  if (pipe2(note, O_CLOEXEC) != 0) {
    return ErrnoStatus(Code::kResourceExhausted, "cannot create the init note pipe");
  }
  sb.init_note_.reset(note[0]);
  UniqueFd note_write(note[1]);
  if (fcntl(note[0], F_SETFL, O_NONBLOCK) != 0) {
    return ErrnoStatus(Code::kInternal, "cannot set up the init note pipe");
  }
  // A zygote's init only reaps: each session's init watches its own namespace.
  plan.init = req.zygote ? InitWatch{.note_fd = note_write.get(), .linger = true}
                         : SandboxInitWatch(policy.limits, note_write.get(),
                                            sb.cgroup ? req.cgroups : nullptr);

  const int cgroup_fd = sb.cgroup ? sb.cgroup->dir_fd() : -1;
  std::vector<UniqueFd> cgroup_tasks;
  // cgroup v1: the child moves itself in (JoinCgroupInChild says why). Without the files (a fake
  // cgroupfs in tests, an unusual layout) the parent writes cgroup.procs as before.
  if (sb.cgroup && cgroup_fd < 0) {
    cgroup_tasks = OpenCgroupJoinFiles(*sb.cgroup, CgroupVersion::kV1);
  }
  for (const UniqueFd& fd : cgroup_tasks) plan.cgroup_tasks.push_back(fd.get());
  bool into_cgroup = false;
  ASSIGN_OR_RETURN(const pid_t pid, CloneChild(cgroup_fd, &sb.pidfd, &into_cgroup));
  if (pid == 0) {
    parent_end.release();  // CLOEXEC anyway; not closing keeps the child free of side effects
    RunChild(plan, child_end.get());
  }
  sb.pid = pid;
  child_end.reset();
  note_write.reset();
  cgroup_tasks.clear();

  // From here on, any early return destroys `sb`, which kills and reaps the child.
  if (Status st = UserNsFromParent(pid, sb.ids); !st.ok()) {
    return st.Annotate("sandbox setup failed at step 'write id maps'");
  }
  if (sb.cgroup && !into_cgroup && plan.cgroup_tasks.empty()) {
    if (Status st = sb.cgroup->AddProcess(pid); !st.ok()) {
      return st.Annotate("sandbox setup failed at step 'join cgroup'");
    }
  }
  const char go = 1;
  if (send(parent_end.get(), &go, 1, MSG_NOSIGNAL) != 1) {
    return ErrnoStatus(Code::kInternal, "sandbox setup failed at step 'start child'");
  }
  // The child's steps take milliseconds; one that is stuck (a lock copied from another thread of
  // the server, a hung mount source) must not hold the server's event loop forever.
  FailureRecord rec;
  ssize_t n = 0;
  for (;;) {
    RETURN_IF_ERROR(WaitForChildReport(parent_end.get(), sb.audit.get()));
    UniqueFd passed;
    n = ReceiveReport(parent_end.get(), &rec, &passed);
    if (n < 0) {
      return ErrnoStatus(Code::kInternal, "sandbox setup: cannot read the child's report");
    }
    if (n != 1) break;
    // An fd the child hands over (fd_passing.h): each once, and only when asked for.
    const char what = reinterpret_cast<const char*>(&rec)[0];
    if (passed && what == kListenerNote && req.listen_port != 0 && !sb.listener) {
      sb.listener = std::move(passed);
    } else if (passed && what == kSeccompListenerNote && req.seccomp_audit && !sb.audit) {
      sb.audit = std::make_unique<SeccompAuditor>(std::move(passed), policy.seccomp_programs[1],
                                                  req.audit_hook);
    } else {
      return Internal("sandbox setup: unexpected message from the child");
    }
  }
  if (n == 0) {
    // EOF: the real process has exec'd (its copy closed at execve)
    if (req.listen_port != 0 && !sb.listener) {
      return Internal("sandbox setup: the child sent no proxy socket");
    }
    if (req.seccomp_audit && !sb.audit) {
      return Internal("sandbox setup: the child sent no seccomp audit listener");
    }
    return sb;
  }
  if (n != static_cast<ssize_t>(sizeof(rec))) {
    return Internal("sandbox setup: malformed report from the child");
  }
  return SetupFailure(rec, req.argv.front(), "sandbox");
}

Sandbox::Sandbox(Sandbox&& other) noexcept
    : pid(std::exchange(other.pid, -1)),
      pidfd(std::move(other.pidfd)),
      cgroup(std::move(other.cgroup)),
      landlock_abi(other.landlock_abi),
      seccomp(other.seccomp),
      ids(other.ids),
      listener(std::move(other.listener)),
      audit(std::move(other.audit)),
      exit_(other.exit_),
      init_note_(std::move(other.init_note_)),
      adopted_(other.adopted_) {}

Sandbox& Sandbox::operator=(Sandbox&& other) noexcept {
  if (this != &other) {
    Destroy();
    pid = std::exchange(other.pid, -1);
    pidfd = std::move(other.pidfd);
    cgroup = std::move(other.cgroup);
    landlock_abi = other.landlock_abi;
    seccomp = other.seccomp;
    ids = other.ids;
    listener = std::move(other.listener);
    audit = std::move(other.audit);
    exit_ = other.exit_;
    init_note_ = std::move(other.init_note_);
    adopted_ = other.adopted_;
  }
  return *this;
}

Sandbox::~Sandbox() { Destroy(); }

Status Sandbox::Signal(int sig) const {
  if (pid <= 0 || exit_) return FailedPrecondition("sandbox is not running");
  if (syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0 && errno != ESRCH) {
    return ErrnoStatus(Code::kInternal, "cannot signal sandbox " + std::to_string(pid));
  }
  return Status::Ok();
}

void Sandbox::Kill() {
  if (pid > 0 && !exit_) (void)Signal(SIGKILL);
  // Init's death kills the PID namespace; the cgroup catches anything that escaped it.
  if (cgroup) (void)cgroup->KillAll();
}

Result<std::optional<ExitStatus>> Sandbox::WaitImpl(bool block) {
  if (exit_) return exit_;
  if (pid <= 0) return FailedPrecondition("sandbox was never started");
  if (adopted_) return WaitAdopted(block);
  siginfo_t info{};
  if (RetryEintr([&] {
        return waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info,
                      WEXITED | (block ? 0 : WNOHANG));
      }) != 0) {
    return ErrnoStatus(Code::kInternal, "cannot wait for sandbox");
  }
  if (info.si_pid == 0) return std::optional<ExitStatus>();
  ExitStatus st;
  if (info.si_code == CLD_EXITED) {
    st.code = info.si_status;
  } else {
    st.signal = info.si_status;
  }
  // Init wrote its note (if any) before it began to exit; the pipe is non-blocking.
  char note = 0;
  if (init_note_ && read(init_note_.get(), &note, 1) == 1) {
    st.task_limit = note == kInitNoteTaskLimit;
  }
  init_note_.reset();
  exit_ = st;
  return exit_;
}

Result<ExitStatus> Sandbox::Wait() {
  ASSIGN_OR_RETURN(std::optional<ExitStatus> st, WaitImpl(true));
  return *st;
}

Result<std::optional<ExitStatus>> Sandbox::TryWait() { return WaitImpl(false); }

void Sandbox::Destroy() {
  if (pid > 0 && !exit_) {
    Kill();
    (void)WaitImpl(true);
  }
  if (cgroup) {
    if (Status st = cgroup->Destroy(); !st.ok()) {
      spdlog::warn("cannot remove cgroup {}: {}", cgroup->name(), st.ToString());
    }
    cgroup.reset();
  }
}

}  // namespace mcpx::jail
