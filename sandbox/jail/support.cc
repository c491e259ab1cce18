#include "jail/support.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/event_loop.h"
#include "util/io.h"
#include "util/unique_fd.h"

extern char** environ;

namespace mcpx::jail {
namespace {

std::optional<long> ReadLongFile(const char* path) {
  std::ifstream in(path);
  long v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

// Async-signal-safe: the child of fork() calls only this and raw syscalls.
bool WriteAll(const char* path, const char* text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const size_t len = std::strlen(text);
  const bool ok = ::write(fd, text, len) == static_cast<ssize_t>(len);
  ::close(fd);
  return ok;
}

enum Step { kUser, kUidMap, kMount, kMountPrivate, kPid, kNet, kIpc, kUts, kCgroup, kSteps };

// Every namespace step in a throwaway child, the way the jail will do it (new user namespace
// first, then the others from inside it), so restrictions that only bite later are seen too.
NamespaceProbe ProbeNamespaces() {
  NamespaceProbe out;
  char uid_map[64];
  char gid_map[64];
  std::snprintf(uid_map, sizeof uid_map, "0 %u 1\n", ::geteuid());
  std::snprintf(gid_map, sizeof gid_map, "0 %u 1\n", ::getegid());
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    out.error = std::string("pipe2: ") + std::strerror(errno);
    return out;
  }
  UniqueFd rd(fds[0]);
  UniqueFd wr(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) {
    out.error = std::string("fork: ") + std::strerror(errno);
    return out;
  }
  if (pid == 0) {
    int res[kSteps];
    for (int& r : res) r = -1;
    auto finish = [&]() {
      (void)!::write(wr.get(), res, sizeof res);
      ::_exit(0);
    };
    res[kUser] = ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
    if (res[kUser] != 0) finish();
    // setgroups must be denied before an unprivileged process may write gid_map.
    const bool mapped = WriteAll("/proc/self/setgroups", "deny") &&
                        WriteAll("/proc/self/uid_map", uid_map) &&
                        WriteAll("/proc/self/gid_map", gid_map);
    res[kUidMap] = mapped ? 0 : (errno != 0 ? errno : EIO);
    if (!mapped) finish();
    res[kMount] = ::unshare(CLONE_NEWNS) == 0 ? 0 : errno;
    if (res[kMount] == 0) {
      res[kMountPrivate] =
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 ? 0 : errno;
    }
    res[kPid] = ::unshare(CLONE_NEWPID) == 0 ? 0 : errno;
    res[kNet] = ::unshare(CLONE_NEWNET) == 0 ? 0 : errno;
    res[kIpc] = ::unshare(CLONE_NEWIPC) == 0 ? 0 : errno;
    res[kUts] = ::unshare(CLONE_NEWUTS) == 0 ? 0 : errno;
    res[kCgroup] = ::unshare(CLONE_NEWCGROUP) == 0 ? 0 : errno;
    finish();
  }
  wr.reset();
  int res[kSteps];
  const ssize_t n = RetryEintr([&] { return ::read(rd.get(), res, sizeof res); });
  int status = 0;
  RetryEintr([&] { return ::waitpid(pid, &status, 0); });
  if (n != static_cast<ssize_t>(sizeof res)) {
    out.error = "namespace probe child died without answering";
    return out;
  }
  out.user = res[kUser];
  out.uid_map = res[kUidMap];
  out.mount = res[kMount];
  out.mount_private = res[kMountPrivate];
  out.pid = res[kPid];
  out.net = res[kNet];
  out.ipc = res[kIpc];
  out.uts = res[kUts];
  out.cgroup = res[kCgroup];
  return out;
}

bool HasOverlayFs() {
  std::ifstream in("/proc/filesystems");
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() >= 7 && line.compare(line.size() - 7, 7, "overlay") == 0 &&
        (line.size() == 7 || line[line.size() - 8] == '\t')) {
      return true;
    }
  }
  return false;
}

}  // namespace

MachineSupport ProbeMachineSupport() {
  MachineSupport s;
  struct utsname u {};
  if (::uname(&u) == 0) s.kernel_release = u.release;
  s.uid = ::getuid();
  s.euid = ::geteuid();

  s.userns_in_kernel = ::access("/proc/self/ns/user", F_OK) == 0;
  s.max_user_namespaces = ReadLongFile("/proc/sys/user/max_user_namespaces");
  s.unprivileged_userns_clone = ReadLongFile("/proc/sys/kernel/unprivileged_userns_clone");
  s.apparmor_restrict_unprivileged =
      ReadLongFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  s.ns = ProbeNamespaces();

  s.seccomp_mode = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
  // A NULL program: the kernel copies it before any other check, so EFAULT means "filter mode
  // exists"; EINVAL means the kernel lacks it.
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, nullptr) < 0) {
    s.seccomp_filter = errno == EFAULT || errno == EACCES;
  }

  const long abi =
      ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi > 0) {
    s.landlock_abi = static_cast<int>(abi);
  } else {
    s.landlock_errno = errno;
  }

  s.no_new_privs = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) >= 0;
  s.cap_ambient = ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 0, 0, 0) >= 0;
  s.overlayfs = HasOverlayFs();

  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS;
  const long fd = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
  if (fd >= 0) {
    s.openat2 = true;
    ::close(static_cast<int>(fd));
  }
  // A size below the first clone_args version: EINVAL when clone3 exists, ENOSYS when not.
  s.clone3 = ::syscall(SYS_clone3, nullptr, 0) < 0 && errno != ENOSYS;
  const long pfd = ::syscall(SYS_pidfd_open, ::getpid(), 0);
  if (pfd >= 0) {
    s.pidfd = true;
    ::close(static_cast<int>(pfd));
  }
  return s;
}

PythonProbe ProbePython(const std::string& python, const std::vector<std::string>& modules,
                        int timeout_ms) {
  PythonProbe out;
  static constexpr char kScript[] =
      "import importlib, sys\n"
      "print('version', sys.version.split()[0], flush=True)\n"
      "for m in sys.argv[1:]:\n"
      "    try:\n"
      "        mod = importlib.import_module(m)\n"
      "        print('ok', m, getattr(mod, '__version__', ''), flush=True)\n"
      "    except BaseException as e:\n"
      "        msg = (str(e).splitlines() or [''])[0]\n"
      "        print('fail', m, type(e).__name__ + (': ' + msg if msg else ''), flush=True)\n";
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    out.error = std::string("pipe2: ") + std::strerror(errno);
    return out;
  }
  UniqueFd rd(out_pipe[0]);
  UniqueFd wr(out_pipe[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {python, "-I", "-c", kScript};
  args.insert(args.end(), modules.begin(), modules.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Headless: a matplotlib that picks a GUI backend would hang or fail without a display.
  std::vector<std::string> env_store = {"MPLBACKEND=Agg"};
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "MPLBACKEND=", 11) != 0) env_store.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, python.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  wr.reset();
  if (rc != 0) {
    out.error = "cannot run " + python + ": " + std::strerror(rc);
    for (const auto& m : modules) out.modules.push_back({m, false, "interpreter did not start"});
    return out;
  }

  std::string text;
  const int64_t deadline = EventLoop::NowMs() + timeout_ms;
  bool timed_out = false;
  for (;;) {
    const int pr = PollUntil(rd.get(), POLLIN, deadline);
    if (pr == 0) {
      timed_out = true;
      break;
    }
    if (pr < 0) continue;  // a failed poll is retried until the deadline
    char buf[4096];
    const ssize_t n = RetryEintr([&] { return ::read(rd.get(), buf, sizeof buf); });
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  RetryEintr([&] { return ::waitpid(pid, &status, 0); });

  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string kind, name;
    words >> kind >> name;
    std::string rest;
    std::getline(words, rest);
    if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
    if (kind == "version") {
      out.ran = true;
      out.version = name;
    } else if (kind == "ok" || kind == "fail") {
      out.modules.push_back({name, kind == "ok", rest});
    }
  }
  if (timed_out) {
    out.error = python + " did not finish within " + std::to_string(timeout_ms) + " ms";
  } else if (!out.ran) {
    out.error = python + " exited with status " + std::to_string(WEXITSTATUS(status)) +
                " without answering";
  }
  for (const auto& m : modules) {
    bool seen = false;
    for (const auto& r : out.modules) seen = seen || r.name == m;
    if (!seen) out.modules.push_back({m, false, timed_out ? "timed out" : "not checked"});
  }
  return out;
}

}  // namespace mcpx::jail
