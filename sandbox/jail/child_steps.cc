#include "jail/child_steps.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "jail/fd_passing.h"
#include "util/io.h"

namespace mcpx::jail {

// The server may block or ignore signals (an event loop with signalfd, SIGPIPE); none of that
// may reach the sandboxed code, and ignored dispositions would survive execve.
ChildFailure ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) return ChildFail("reset signal mask");
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // KILL/STOP: EINVAL
  return ChildOk();
}

ChildFailure WaitForParent(int sync_fd) {
  char go = 0;
  const ssize_t n = read(sync_fd, &go, 1);
  if (n != 1) return ChildFail("wait for parent", n == 0 ? EPIPE : errno);
  return ChildOk();
}

// Writing 0 to a v1 `tasks` file moves the calling thread, and the kernel skips the global
// threadgroup lock for that case. The parent writing our pid to cgroup.procs takes that lock for
// writing, which waits for an RCU grace period: 2-23 ms per spawn here (bench/README.md).
// We are single-threaded, so moving this thread moves the whole process; every later process and
// thread in the sandbox inherits the cgroup. The fds were opened by the parent, so the kernel
// checks its credentials, not ours.
ChildFailure JoinCgroupInChild(const std::vector<int>& tasks_fds) {
  for (const int fd : tasks_fds) {
    const ssize_t n = RetryEintr([fd] { return write(fd, "0", 1); });
    if (n != 1) return ChildFail("join cgroup", n < 0 ? errno : EIO);
    close(fd);
  }
  return ChildOk();
}

ChildFailure DieWithParent() {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return ChildFail("set parent-death signal");
  return ChildOk();
}

// Until the real process's execve (which makes a new, dumpable mm), our memory is a copy of the
// server's: its heap, with other sessions' code and output, and its environment. Not dumpable,
// /proc/1/{mem,environ,maps,fd} of init are closed to the code in the sandbox, which otherwise
// runs as the same host uid when the server is unprivileged (a root server's uid change already
// cleared the flag).
ChildFailure NotDumpable() {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return ChildFail("clear dumpable");
  return ChildOk();
}

// Init's /proc/1/cmdline and comm stay readable (they never need ptrace access); they would
// show the server's command line, with its host paths.
ChildFailure HideServerArgs(const AddressRange& args) {
  if (args.end > args.start) {
    explicit_bzero(reinterpret_cast<void*>(args.start), args.end - args.start);
  }
  if (prctl(PR_SET_NAME, "mcpx-init", 0, 0, 0) != 0) return ChildFail("set process name");
  return ChildOk();
}

ChildFailure UnshareCgroup(bool enabled) {
  if (enabled && unshare(CLONE_NEWCGROUP) != 0) return ChildFail("unshare cgroup namespace");
  return ChildOk();
}

ChildFailure SetHostname(const std::string& name) {
  if (sethostname(name.data(), name.size()) != 0) return ChildFail("sethostname");
  if (setdomainname(name.data(), name.size()) != 0) return ChildFail("setdomainname");
  return ChildOk();
}

ChildFailure NewSession() {
  // A new session has no controlling terminal: TIOCSTI has nothing to inject into.
  if (setsid() < 0) return ChildFail("setsid");
  return ChildOk();
}

namespace {

bool IsTarget(const std::vector<FdMapping>& fds, int fd) {
  for (const FdMapping& m : fds) {
    if (m.child_fd == fd) return true;
  }
  return false;
}

}  // namespace

// Moves the mapped fds to their numbers, points unmapped stdio at /dev/null, and closes
// everything else (CVE-2024-21626: a leaked host fd is a way out). The sync fd is kept just
// above the mapped range, and init's note fd (if any) just above it; both are CLOEXEC and go away
// at the real process's execve.
ChildFailure MapFds(const std::vector<FdMapping>& fds, std::vector<int>& scratch, int* note_fd,
                    int* sync_fd) {
  int max_target = 2;
  int floor = std::max(*sync_fd, *note_fd);
  for (const FdMapping& m : fds) {
    if (m.child_fd > max_target) max_target = m.child_fd;
    if (m.parent_fd > floor) floor = m.parent_fd;
  }
  if (max_target > floor) floor = max_target;
  floor += 3;
  // Copies first, above every source and target, so no dup3 below clobbers a source.
  for (size_t i = 0; i < fds.size(); ++i) {
    scratch[i] = fcntl(fds[i].parent_fd, F_DUPFD_CLOEXEC, floor);
    if (scratch[i] < 0) return ChildFail("duplicate mapped fds");
  }
  const int sync_copy = fcntl(*sync_fd, F_DUPFD_CLOEXEC, floor);
  if (sync_copy < 0) return ChildFail("duplicate mapped fds");
  const int note_copy = *note_fd >= 0 ? fcntl(*note_fd, F_DUPFD_CLOEXEC, floor) : -1;
  if (*note_fd >= 0 && note_copy < 0) return ChildFail("duplicate mapped fds");
  for (size_t i = 0; i < fds.size(); ++i) {
    if (dup3(scratch[i], fds[i].child_fd, 0) < 0) return ChildFail("map fds");
  }
  const int sync_final = max_target + 1;
  if (dup3(sync_copy, sync_final, O_CLOEXEC) < 0) return ChildFail("map fds");
  *sync_fd = sync_final;
  int last_kept = sync_final;
  if (note_copy >= 0) {
    if (dup3(note_copy, sync_final + 1, O_CLOEXEC) < 0) return ChildFail("map fds");
    *note_fd = last_kept = sync_final + 1;
  }
  for (int fd = 0; fd <= 2; ++fd) {
    if (IsTarget(fds, fd)) continue;
    const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) return ChildFail("open /dev/null for stdio");
    if (null_fd != fd) {
      if (dup3(null_fd, fd, 0) < 0) return ChildFail("map fds");
      close(null_fd);
    } else if (fcntl(fd, F_SETFD, 0) != 0) {
      return ChildFail("map fds");
    }
  }
  for (int fd = 3; fd <= max_target; ++fd) {
    if (!IsTarget(fds, fd)) close(fd);
  }
  if (syscall(SYS_close_range, static_cast<unsigned>(last_kept + 1), ~0u, 0u) != 0) {
    return ChildFail("close inherited fds");
  }
  return ChildOk();
}

ChildFailure ChangeDir(const std::string& cwd) {
  if (chdir(cwd.c_str()) != 0) return ChildFail("chdir to working directory");
  return ChildOk();
}

ChildFailure NoNewPrivs() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ChildFail("no_new_privs");
  return ChildOk();
}

// An audited sandbox's last program (seccomp_audit.h) makes the call return its listener: it
// goes to the server at once and is closed here, before anything else runs, so that no process
// of the sandbox ever holds it (one could answer its own notifications). The sendmsg already
// passes through the audited profile; AuditPrograms has checked that it allows it.
ChildFailure InstallSeccomp(const std::vector<SeccompProgram>& programs, int report_fd) {
  for (const SeccompProgram& p : programs) {
    const sock_fprog prog = p.fprog();
    const long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p.flags, &prog);
    if (rc < 0) return ChildFail("install seccomp filter");
    if ((p.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) == 0) continue;
    const int listener = static_cast<int>(rc);
    const int err = SendFdToParent(report_fd, kSeccompListenerNote, listener);
    close(listener);
    if (err != 0) return ChildFail("send the seccomp audit listener", err);
  }
  return ChildOk();
}

AddressRange OwnArgArea() {
  AddressRange r;
  const int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return r;
  char buf[2048];
  const ssize_t n = RetryEintr([&] { return read(fd, buf, sizeof(buf) - 1); });
  close(fd);
  if (n <= 0) return r;
  buf[n] = '\0';
  // Fields after the command name, which is in parentheses and may hold anything: the state is
  // field 3; p ends on the space before field 48.
  const char* p = strrchr(buf, ')');
  for (int field = 2; p != nullptr && field < 48; ++field) p = strchr(p + 1, ' ');
  if (p == nullptr) return r;
  char* end = nullptr;
  const unsigned long long start = strtoull(p + 1, &end, 10);
  const unsigned long long stop = end != nullptr ? strtoull(end, nullptr, 10) : 0;
  if (stop > start) r = {static_cast<uintptr_t>(start), static_cast<uintptr_t>(stop)};
  return r;
}

void ReportChildFailure(int report_fd, ChildFailure failure) {
  FailureRecord rec;
  const char* step = failure.step != nullptr ? failure.step : "unknown";
  size_t i = 0;
  for (; step[i] != '\0' && i + 1 < rec.step.size(); ++i) rec.step[i] = step[i];
  rec.step[i] = '\0';
  rec.err = failure.err;
  // One datagram; if the parent is gone there is no one left to tell.
  (void)!send(report_fd, &rec, sizeof(rec), MSG_NOSIGNAL);
}

}  // namespace mcpx::jail
