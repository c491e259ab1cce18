// Installs the compiled filters for real in a forked child and tries syscalls with arguments that
// make an allowed call fail harmlessly (EFAULT, EBADF, EINVAL), so "blocked by policy" (the
// filter's errno) is told apart from "failed for another reason" (bubblewrap's try-syscall idea).
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "jail/policy.h"
#include "jail/seccomp_compiler.h"
#include "util/unique_fd.h"

namespace mcpx::jail {
namespace {

constexpr long kTiocsti = 0x5412;
constexpr long kTcgets = 0x5401;

struct Probe {
  const char* name;
  long nr;
  long args[6];
};

// Compiled in the parent; the child only installs them (as the jail does).
struct Filters {
  SeccompProgram builtin;
  std::optional<SeccompProgram> profile;
};

Filters Compile(const std::string& profile_file) {
  Filters f;
  auto b = CompileBuiltinFilter();
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  if (b.ok()) f.builtin = std::move(b).value();
  if (!profile_file.empty()) {
    auto doc = ReadJsonFile(std::string(MCPX_SOURCE_DIR) + "/policies/seccomp/" + profile_file);
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    auto profile = ParseSeccompProfile(*doc);
    EXPECT_TRUE(profile.ok()) << profile.status().ToString();
    auto p = CompileSeccompProfile(*profile);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (p.ok()) f.profile = std::move(p).value();
  }
  return f;
}

// In the child: no allocation, no logging. Returns false when installing failed.
bool InstallInChild(const Filters& f) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  sock_fprog b = f.builtin.fprog();
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f.builtin.flags, &b) != 0) return false;
  if (f.profile) {
    sock_fprog p = f.profile->fprog();
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f.profile->flags, &p) != 0) return false;
  }
  return true;
}

struct Outcome {
  long ret;
  int err;
};

// Runs every probe in a child under the filters; one Outcome per probe, read from a pipe.
std::vector<Outcome> RunProbes(const Filters& f, const std::vector<Probe>& probes) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return {};
  }
  UniqueFd rd(fds[0]), wr(fds[1]);
  const pid_t pid = fork();
  if (pid == 0) {
    rd.reset();
    if (!InstallInChild(f)) _exit(100);
    for (const Probe& p : probes) {
      errno = 0;
      Outcome o{syscall(p.nr, p.args[0], p.args[1], p.args[2], p.args[3], p.args[4], p.args[5]), 0};
      o.err = o.ret < 0 ? errno : 0;
      if (o.ret >= 0 && (p.nr == SYS_socket || p.nr == SYS_clone)) {
        if (p.nr == SYS_clone && o.ret == 0) _exit(0);  // a child that should not exist
        if (p.nr == SYS_socket) close(static_cast<int>(o.ret));
      }
      if (write(wr.get(), &o, sizeof(o)) != static_cast<ssize_t>(sizeof(o))) _exit(101);
    }
    _exit(0);
  }
  wr.reset();
  std::vector<Outcome> out(probes.size());
  size_t got = 0;
  auto* buf = reinterpret_cast<char*>(out.data());
  while (got < out.size() * sizeof(Outcome)) {
    const ssize_t n = read(rd.get(), buf + got, out.size() * sizeof(Outcome) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "probe child: status " << status << " (100 = installing the filter failed)";
  EXPECT_EQ(got, out.size() * sizeof(Outcome));
  return out;
}

// The child dies from SIGSYS (KILL_PROCESS) when it makes the given raw call.
int TermSignalOf(const Filters* f, void (*call)()) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (f != nullptr && !InstallInChild(*f)) _exit(100);
    call();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

void X32Getpid() { syscall(0x40000000 | SYS_getpid); }

void I386Getpid() {
  long ret = 20;  // __NR_getpid on i386
  asm volatile("int $0x80" : "+a"(ret) : : "memory");
}

long L(uint64_t v) { return static_cast<long>(v); }

// Probes blocked by the built-in filter, with what an allowed call would return instead.
std::vector<Probe> BuiltinBlocked() {
  return {
      {"mount", SYS_mount, {L(8), L(8), L(8), 0, 0, 0}},
      {"umount2", SYS_umount2, {L(8), 0, 0, 0, 0, 0}},
      {"unshare(NEWUSER|FS)", SYS_unshare, {CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0, 0}},
      {"setns(-1)", SYS_setns, {-1, 0, 0, 0, 0, 0}},
      {"keyctl(-1)", SYS_keyctl, {-1, 0, 0, 0, 0, 0}},
      {"bpf(-1)", SYS_bpf, {-1, 0, 0, 0, 0, 0}},
      {"perf_event_open(bad)", SYS_perf_event_open, {L(8), 0, -1, -1, 0, 0}},
      {"io_uring_setup(bad)", SYS_io_uring_setup, {1, L(8), 0, 0, 0, 0}},
      {"userfaultfd(bad flags)", SYS_userfaultfd, {-1, 0, 0, 0, 0, 0}},
      {"ptrace(-1)", SYS_ptrace, {-1, 0, 0, 0, 0, 0}},
      {"open_by_handle_at(-1)", SYS_open_by_handle_at, {-1, L(8), 0, 0, 0, 0}},
      {"ioctl(-1, TIOCSTI)", SYS_ioctl, {-1, kTiocsti, 0, 0, 0, 0}},
      {"ioctl(-1, TIOCSTI|1<<32)", SYS_ioctl, {-1, L(0x100000000ull | kTiocsti), 0, 0, 0, 0}},
      {"clone(NEWUSER|FS)", SYS_clone, {CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0, 0}},
      {"personality(ADDR_NO_RANDOMIZE)", SYS_personality, {0x0040000, 0, 0, 0, 0, 0}},
  };
}

TEST(SeccompInstallTest, ProbesDistinguishBlockedFromFailedWithoutFilter) {
  // The same probes with no filter: none may return the filter's errno, or the test proves
  // nothing. Root-only calls need root here; skip otherwise.
  if (geteuid() != 0) GTEST_SKIP() << "needs root: unfiltered mount/bpf probes return EPERM";
  const auto probes = BuiltinBlocked();
  for (const Probe& p : probes) {
    if (p.nr == SYS_clone || p.nr == SYS_personality) continue;  // would really run
    errno = 0;
    const long r = syscall(p.nr, p.args[0], p.args[1], p.args[2], p.args[3], p.args[4], p.args[5]);
    EXPECT_FALSE(r < 0 && errno == EPERM) << p.name << " returns EPERM even without a filter";
  }
}

TEST(SeccompInstallTest, BuiltinFilterBlocksAttackSurface) {
  const Filters f = Compile("");
  auto probes = BuiltinBlocked();
  probes.push_back({"clone3(bad)", SYS_clone3, {L(8), 88, 0, 0, 0, 0}});
  probes.push_back({"socket(AF_PACKET)", SYS_socket, {AF_PACKET, SOCK_RAW, 0, 0, 0, 0}});
  probes.push_back({"socket(NETLINK_AUDIT)", SYS_socket, {AF_NETLINK, SOCK_RAW, 9, 0, 0, 0}});
  // Set-id modes: with bad pointers and fds, an allowed call would fail with EFAULT or EBADF.
  probes.push_back({"chmod(bad, 04755)", SYS_chmod, {L(8), 04755, 0, 0, 0, 0}});
  probes.push_back({"fchmod(-1, 02755)", SYS_fchmod, {-1, 02755, 0, 0, 0, 0}});
  probes.push_back({"fchmodat(bad, 06755)", SYS_fchmodat, {AT_FDCWD, L(8), 06755, 0, 0, 0}});
  probes.push_back({"openat(bad, O_CREAT, 04755)",
                    SYS_openat,
                    {AT_FDCWD, L(8), O_CREAT | O_WRONLY, 04755, 0, 0}});
  probes.push_back(
      {"mknodat(bad, S_IFREG|04755)", SYS_mknodat, {AT_FDCWD, L(8), S_IFREG | 04755, 0, 0, 0}});
  probes.push_back({"openat2(bad)", SYS_openat2, {AT_FDCWD, L(8), L(8), 24, 0, 0}});
  probes.push_back({"memfd_create(bad, 0)", SYS_memfd_create, {L(8), 0, 0, 0, 0, 0}});
  probes.push_back({"memfd_create(bad, MFD_EXEC)", SYS_memfd_create, {L(8), 0x10, 0, 0, 0, 0}});
  const auto out = RunProbes(f, probes);
  ASSERT_EQ(out.size(), probes.size());
  for (size_t i = 0; i < probes.size(); ++i) {
    int want = EPERM;
    if (probes[i].nr == SYS_clone3 || probes[i].nr == SYS_openat2) want = ENOSYS;
    if (probes[i].nr == SYS_memfd_create) want = probes[i].args[1] != 0 ? EPERM : ENOSYS;
    if (probes[i].nr == SYS_socket)
      want = probes[i].args[0] == AF_NETLINK ? EPROTONOSUPPORT : EAFNOSUPPORT;
    EXPECT_EQ(out[i].ret, -1) << probes[i].name;
    EXPECT_EQ(out[i].err, want) << probes[i].name << ": " << std::strerror(out[i].err);
  }
}

TEST(SeccompInstallTest, BuiltinFilterLetsOrdinaryCallsThrough) {
  const Filters f = Compile("");
  const std::vector<Probe> probes = {
      {"read(-1)", SYS_read, {-1, 0, 0, 0, 0, 0}},
      {"openat(bad path)", SYS_openat, {AT_FDCWD, L(8), O_RDONLY, 0, 0, 0}},
      {"ioctl(-1, TCGETS)", SYS_ioctl, {-1, kTcgets, 0, 0, 0, 0}},
      {"clone(THREAD w/o SIGHAND)", SYS_clone, {CLONE_THREAD, 0, 0, 0, 0, 0}},
      {"personality(query)", SYS_personality, {L(0xffffffffull), 0, 0, 0, 0, 0}},
      {"socket(AF_UNIX)", SYS_socket, {AF_UNIX, SOCK_STREAM, 0, 0, 0, 0}},
      {"chmod(bad, 0755)", SYS_chmod, {L(8), 0755, 0, 0, 0, 0}},
      {"fchmod(-1, 01777)", SYS_fchmod, {-1, 01777, 0, 0, 0, 0}},
      {"openat(bad, O_RDONLY, 04755)", SYS_openat, {AT_FDCWD, L(8), O_RDONLY, 04755, 0, 0}},
      {"memfd_create(bad, MFD_NOEXEC_SEAL)", SYS_memfd_create, {L(8), 0x8, 0, 0, 0, 0}},
  };
  const auto out = RunProbes(f, probes);
  ASSERT_EQ(out.size(), probes.size());
  EXPECT_EQ(out[6].err, EFAULT);
  EXPECT_EQ(out[7].err, EBADF);
  EXPECT_EQ(out[8].err, EFAULT);
  EXPECT_EQ(out[9].err, EFAULT);
  EXPECT_EQ(out[0].err, EBADF);
  EXPECT_EQ(out[1].err, EFAULT);
  EXPECT_EQ(out[2].err, EBADF);
  EXPECT_EQ(out[3].err, EINVAL);
  EXPECT_GE(out[4].ret, 0);
  EXPECT_GE(out[5].ret, 0) << std::strerror(out[5].err);
}

TEST(SeccompInstallTest, BuiltinFilterKillsX32) {
  if (TermSignalOf(nullptr, X32Getpid) != 0) GTEST_SKIP() << "x32 getpid dies even unfiltered";
  const Filters f = Compile("");
  EXPECT_EQ(TermSignalOf(&f, X32Getpid), SIGSYS);
}

TEST(SeccompInstallTest, BuiltinFilterKillsI386) {
  if (TermSignalOf(nullptr, I386Getpid) != 0) {
    GTEST_SKIP() << "int 0x80 does not work here (no IA32 emulation); nothing to kill";
  }
  const Filters f = Compile("");
  EXPECT_EQ(TermSignalOf(&f, I386Getpid), SIGSYS);
}

class ShippedProfileInstallTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedProfileInstallTest, BlocksUnlistedAndAllowsListed) {
  const Filters f = Compile(GetParam());
  ASSERT_TRUE(f.profile.has_value());
  const std::vector<Probe> probes = {
      // Not listed: the profile's default errno; where both filters deny, the newer one wins.
      {"vmsplice(-1)", SYS_vmsplice, {-1, 0, 0, 0, 0, 0}},
      {"io_setup(bad)", SYS_io_setup, {1, L(8), 0, 0, 0, 0}},
      {"mount", SYS_mount, {L(8), L(8), L(8), 0, 0, 0}},
      {"clone3(bad)", SYS_clone3, {L(8), 88, 0, 0, 0, 0}},
      // Listed by the profile, still denied by the built-in filter.
      {"ioctl(-1, TIOCSTI)", SYS_ioctl, {-1, kTiocsti, 0, 0, 0, 0}},
      {"clone(NEWUSER|FS)", SYS_clone, {CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0, 0}},
      // Allowed: fail for their own reasons.
      {"read(-1)", SYS_read, {-1, 0, 0, 0, 0, 0}},
      {"openat(bad path)", SYS_openat, {AT_FDCWD, L(8), O_RDONLY, 0, 0, 0}},
      {"newfstatat(bad path)", SYS_newfstatat, {AT_FDCWD, L(8), L(8), 0, 0, 0}},
      {"ioctl(-1, TCGETS)", SYS_ioctl, {-1, kTcgets, 0, 0, 0, 0}},
      {"socketpair(bad)", SYS_socketpair, {AF_UNIX, SOCK_STREAM, 0, L(8), 0, 0}},
      {"wait4(-1)", SYS_wait4, {-1, 0, 0, 0, 0, 0}},
  };
  const auto out = RunProbes(f, probes);
  ASSERT_EQ(out.size(), probes.size());
  const int want[] = {ENOSYS, ENOSYS, ENOSYS, ENOSYS, EPERM,  EPERM,
                      EBADF,  EFAULT, EFAULT, EBADF,  EFAULT, ECHILD};
  for (size_t i = 0; i < probes.size(); ++i) {
    EXPECT_EQ(out[i].ret, -1) << probes[i].name;
    EXPECT_EQ(out[i].err, want[i]) << probes[i].name << ": got " << std::strerror(out[i].err);
  }
}

// The real workload: Debian's Python with the data stack, threads, a subprocess and sockets,
// under builtin + profile. Proves the allow-list is enough, which the BPF checks cannot.
TEST_P(ShippedProfileInstallTest, PythonDataStackRuns) {
  const char* python = "/usr/bin/python3";
  if (access(python, X_OK) != 0) GTEST_SKIP() << python << " is not installed";
  if (system("/usr/bin/python3 -c 'import numpy, pandas, matplotlib' 2>/dev/null") != 0) {
    GTEST_SKIP() << "numpy/pandas/matplotlib are not importable by " << python;
  }
  const bool strict = GetParam() == "strict.json";
  std::string script =
      "import os, socket, subprocess, tempfile, threading\n"
      "import numpy as np, pandas as pd\n"
      "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
      "a = np.random.rand(200, 200); (a @ a).sum()\n"
      "df = pd.DataFrame({'x': range(100)}); df.describe()\n"
      "fig, ax = plt.subplots(); ax.plot([1, 2, 3])\n"
      "d = tempfile.mkdtemp(); fig.savefig(os.path.join(d, 'f.png'))\n"
      "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
      "assert subprocess.run(['/bin/true']).returncode == 0\n"
      "a, b = socket.socketpair(); a.send(b'x'); assert b.recv(1) == b'x'\n";
  if (!strict) {
    script +=
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "c = socket.create_connection(s.getsockname()); c.send(b'y')\n"
        "assert s.accept()[0].recv(1) == b'y'\n";
  } else {
    script +=
        "try:\n  socket.socket()\n  raise SystemExit('AF_INET socket allowed under strict')\n"
        "except OSError as e:\n  assert e.errno == 97, e\n";
  }
  script += "print('ok')\n";

  char dir_template[] = "/tmp/mcpx-seccomp-py-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string mpl = "MPLCONFIGDIR=" + dir;
  const std::string tmp = "TMPDIR=" + dir;
  const Filters f = Compile(GetParam());
  ASSERT_TRUE(f.profile.has_value());

  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd rd(fds[0]), wr(fds[1]);
  const pid_t pid = fork();
  if (pid == 0) {
    rd.reset();
    dup2(wr.get(), 1);
    dup2(wr.get(), 2);
    char* const argv[] = {const_cast<char*>(python), const_cast<char*>("-c"),
                          const_cast<char*>(script.c_str()), nullptr};
    char* const envp[] = {const_cast<char*>(mpl.c_str()), const_cast<char*>(tmp.c_str()),
                          const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};
    if (!InstallInChild(f)) _exit(100);
    execve(python, argv, envp);
    _exit(101);
  }
  wr.reset();
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = read(rd.get(), buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::system(("rm -rf '" + dir + "'").c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << GetParam() << ": status " << status << "\n"
      << output;
  EXPECT_NE(output.find("ok"), std::string::npos) << output;
}

INSTANTIATE_TEST_SUITE_P(Profiles, ShippedProfileInstallTest,
                         ::testing::Values("default.json", "strict.json"));

}  // namespace
}  // namespace mcpx::jail
