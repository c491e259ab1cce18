#include "jail/session_fork.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "jail/caps.h"
#include "jail/child_steps.h"
#include "jail/fd_passing.h"
#include "jail/net.h"
#include "util/io.h"

namespace mcpx::jail {
namespace {

using nlohmann::json;

// The cgroup namespace comes later, from init, once it sits in the session's cgroup.
constexpr int kSessionNamespaces =
    CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;

ChildFailure WriteOwnProcFile(const char* path, const char* data) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ChildFail(path);
  const size_t len = strlen(data);
  const ssize_t n = RetryEintr([&] { return write(fd, data, len); });
  const int err = n < 0 ? errno : EIO;
  close(fd);
  if (n != static_cast<ssize_t>(len)) return ChildFail(path, err);
  return ChildOk();
}

// A user namespace of the session's own (with the other namespaces, which it then owns), where
// this process keeps the ids it had in the zygote's: an unprivileged process may map exactly its
// own ids, once setgroups is denied. It holds every capability there, for init's steps.
ChildFailure OwnNamespaces(uid_t uid, gid_t gid) {
  if (unshare(kSessionNamespaces) != 0) return ChildFail("unshare the session's namespaces");
  char line[48];
  if (auto f = WriteOwnProcFile("/proc/self/setgroups", "deny"); f.failed()) return f;
  snprintf(line, sizeof(line), "%u %u 1", uid, uid);
  if (auto f = WriteOwnProcFile("/proc/self/uid_map", line); f.failed()) return f;
  snprintf(line, sizeof(line), "%u %u 1", gid, gid);
  return WriteOwnProcFile("/proc/self/gid_map", line);
}

// The server is not init's parent: it watches and signals init through this pidfd.
ChildFailure SendOwnPidfd(int report_fd) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (fd < 0) return ChildFail("open init's pidfd");
  const int err = SendFdToParent(report_fd, kInitPidfdNote, fd);
  close(fd);
  if (err != 0) return ChildFail("send init's pidfd", err);
  return ChildOk();
}

// Replaces `from` with `to` (same length) wherever it occurs in the argv strings.
void RenameArgs(const AddressRange& args, std::string_view from, std::string_view to) {
  char* text = reinterpret_cast<char*>(args.start);
  const size_t len = args.end - args.start;
  for (size_t i = 0; i + from.size() <= len; ++i) {
    if (memcmp(text + i, from.data(), from.size()) == 0) memcpy(text + i, to.data(), to.size());
  }
}

#define STEP(expr) CHILD_STEP(report, expr)

}  // namespace

void BuildLimitPlans(SessionPlan& p) {
  p.mounts = BuildSessionMountPlan(p.limits.tmp_bytes, p.limits.shm_bytes);
  p.rlimits = BuildRlimitPlan(p.limits, p.in_cgroup);
  p.userns_limits = BuildUserNsLimitPlan(p.limits);
}

std::string EncodeSessionPlan(const SessionPlan& p) {
  json rules = json::array();
  for (const LandlockPlan::Rule& r : p.landlock.rules) rules.push_back({r.path, r.access});
  json programs = json::array();
  for (const SeccompProgram& prog : p.seccomp) {
    json insns = json::array();
    for (const sock_filter& i : prog.insns) insns.push_back({i.code, i.jt, i.jf, i.k});
    programs.push_back({{"flags", prog.flags}, {"insns", std::move(insns)}});
  }
  const json j = {{"uid", p.uid},
                  {"gid", p.gid},
                  {"hostname", p.hostname},
                  {"cwd", p.cwd},
                  {"limits", LimitsToJson(p.limits)},
                  {"in_cgroup", p.in_cgroup},
                  {"last_cap", p.last_cap},
                  {"init",
                   {{"task_limit", p.init.task_limit},
                    {"cpu_millis", p.init.cpu_millis},
                    {"clock_ticks", p.init.clock_ticks}}},
                  {"landlock",
                   {{"abi", p.landlock.abi},
                    {"handled_fs", p.landlock.handled_fs},
                    {"scoped", p.landlock.scoped},
                    {"rules", std::move(rules)}}},
                  {"seccomp", std::move(programs)}};
  return j.dump();
}

Result<SessionPlan> DecodeSessionPlan(std::string_view text) {
  try {
    const json j = json::parse(text);
    SessionPlan p;
    p.uid = j.at("uid").get<uid_t>();
    p.gid = j.at("gid").get<gid_t>();
    p.hostname = j.at("hostname").get<std::string>();
    p.cwd = j.at("cwd").get<std::string>();
    json others = json::object();
    RETURN_IF_ERROR(ParseLimits(j.at("limits"), "limits", p.limits, others));
    if (!others.empty()) return InvalidArgument("session plan: unknown limits " + others.dump());
    p.in_cgroup = j.at("in_cgroup").get<bool>();
    p.last_cap = j.at("last_cap").get<int>();
    const json& init = j.at("init");
    p.init.task_limit = init.at("task_limit").get<uint64_t>();
    p.init.cpu_millis = init.at("cpu_millis").get<uint32_t>();
    p.init.clock_ticks = init.at("clock_ticks").get<long>();
    const json& ll = j.at("landlock");
    p.landlock.abi = ll.at("abi").get<int>();
    p.landlock.handled_fs = ll.at("handled_fs").get<uint64_t>();
    p.landlock.scoped = ll.at("scoped").get<uint64_t>();
    for (const json& r : ll.at("rules")) {
      p.landlock.rules.push_back({r.at(0).get<std::string>(), r.at(1).get<uint64_t>()});
    }
    for (const json& prog : j.at("seccomp")) {
      SeccompProgram out;
      out.flags = prog.at("flags").get<unsigned int>();
      for (const json& i : prog.at("insns")) {
        out.insns.push_back({i.at(0).get<uint16_t>(), i.at(1).get<uint8_t>(),
                             i.at(2).get<uint8_t>(), i.at(3).get<uint32_t>()});
      }
      p.seccomp.push_back(std::move(out));
    }
    BuildLimitPlans(p);
    return p;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("session plan: ") + e.what());
  }
}

void EnterSession(SessionPlan& plan, const SessionFds& fds) {
  int report = fds.report;
  // Nothing may act on a signal until the kernel has the zygote's handlers back (a SIGINT with
  // the default action would end it) and init has its own.
  sigset_t all, saved;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &saved);

  STEP(OwnNamespaces(plan.uid, plan.gid));
  const pid_t init = fork();
  if (init < 0) STEP(ChildFail("start the session's init"));
  if (init > 0) _exit(0);

  // Init: PID 1 of the session's namespace. The order is the cold pipeline's (child_pipeline.cc
  // says why), up to the fork of the kernel below.
  STEP(JoinCgroupInChild(fds.cgroup));
  STEP(UnshareCgroup(true));
  STEP(SetHostname(plan.hostname));
  STEP(UserNsLimitsInChild(plan.userns_limits));
  // In our PID namespace, so the new /proc shows the session's processes only.
  STEP(SessionMountsInChild(plan.mounts));
  STEP(LoopbackUpInChild());
  STEP(RlimitsInChild(plan.rlimits));
  STEP(NewSession());
  std::vector<FdMapping> map = {{fds.out, 1}, {fds.err, 2}, {fds.control, 3}};
  std::vector<int> scratch(map.size(), -1);
  int note = fds.note;
  STEP(MapFds(map, scratch, &note, &report));
  STEP(ChangeDir(plan.cwd));
  // While init may still send it (seccomp may deny pidfd_open).
  STEP(SendOwnPidfd(report));
  const AddressRange args = OwnArgArea();

  STEP(DropBoundingAndAmbientInChild(plan.last_cap));
  STEP(NoNewPrivs());
  // Before the fork, so that init and the kernel share one Landlock domain: with signals scoped
  // (ABI 6), two domains could not signal each other, and init forwards SIGINT.
  STEP(LandlockInChild(plan.landlock));
  STEP(ClearCapsInChild());

  // The kernel is forked before init's last steps: init then becomes not dumpable (as a cold
  // init is), which a fork would inherit (the kernel's /proc/self would be closed to it). Each
  // installs the seccomp programs itself.
  const pid_t kernel = fork();
  if (kernel < 0) STEP(ChildFail("start the kernel"));
  if (kernel == 0) {
    // Named as the kernel it is (`ps`, the server's tests): its argv is still the zygote's.
    RenameArgs(args, "mcpx_zygote.py", "mcpx_kernel.py");
    STEP(InstallSeccomp(plan.seccomp, report));
    STEP(ExecOnlyRlimitsInChild(plan.rlimits));
    // Closing the last copy of the report socket tells the server that setup is over.
    close(report);
    close(note);
    sigprocmask(SIG_SETMASK, &saved, nullptr);
    return;
  }
  // Init's memory is a copy of the zygote's; its argv names the zygote.
  STEP(NotDumpable());
  STEP(HideServerArgs(args));
  STEP(InstallSeccomp(plan.seccomp, report));
  // Init runs no Python: default dispositions, then its own forwarding (a signal meanwhile finds
  // PID 1 with the default action, which ignores it).
  STEP(ResetSignals());
  InitWatch watch = plan.init;
  watch.note_fd = note;
  watch.note_exit = true;
  SuperviseInit(kernel, watch);
}

}  // namespace mcpx::jail
