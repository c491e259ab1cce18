// The pieces of `exec --audit` that decide (jail/seccomp_audit.h): the classic-BPF interpreter,
// the profile rewritten to notify, and the built-in filter made to defer to the profile, checked
// against the shipped default profile without forking; then one live run of the listener.
#include "jail/seccomp_audit.h"

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "jail/fd_passing.h"
#include "jail/json_fields.h"
#include "jail/seccomp_compiler.h"
#include "seccomp_results.h"

namespace mcpx::jail {
namespace {

seccomp_data Call(int nr, std::array<uint64_t, 6> args = {}, uint32_t arch = AUDIT_ARCH_X86_64) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = arch;
  for (size_t i = 0; i < 6; ++i) d.args[i] = args[i];
  return d;
}

sock_filter I(uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) {
  return sock_filter{code, jt, jf, k};
}

constexpr uint32_t kNrOffset = 0;
constexpr uint32_t kArg0Low = 16;

// ---------------------------------------------------------------------------------------------
// The interpreter.

TEST(RunSeccompFilterTest, LoadsCompareAndReturn) {
  // if (nr == 39) ALLOW else ERRNO(A = arg0 low word)
  const std::vector<sock_filter> p = {
      I(BPF_LD | BPF_W | BPF_ABS, kNrOffset),
      I(BPF_JMP | BPF_JEQ | BPF_K, 39, 0, 1),
      I(BPF_RET | BPF_K, kAllow),
      I(BPF_LD | BPF_W | BPF_ABS, kArg0Low),
      I(BPF_ALU | BPF_OR | BPF_K, Errno(0)),
      I(BPF_RET | BPF_A, 0),
  };
  EXPECT_EQ(RunSeccompFilter(p, Call(39)), kAllow);
  EXPECT_EQ(RunSeccompFilter(p, Call(40, {7})), Errno(7));
}

TEST(RunSeccompFilterTest, ScratchMemoryIndexRegisterAndJumps) {
  const std::vector<sock_filter> p = {
      I(BPF_LD | BPF_IMM, 5),
      I(BPF_ST, 3),                           // M[3] = 5
      I(BPF_LDX | BPF_MEM, 3),                // X = 5
      I(BPF_LD | BPF_W | BPF_ABS, kArg0Low),  // A = arg0
      I(BPF_JMP | BPF_JGT | BPF_X, 0, 0, 1),  // A > X ?
      I(BPF_JMP | BPF_JA, 2),                 //   yes: to the JSET
      I(BPF_MISC | BPF_TXA, 0),               //   no: A = X
      I(BPF_RET | BPF_A, 0),                  //       return 5
      I(BPF_JMP | BPF_JSET | BPF_K, 0x100, 0, 1),
      I(BPF_RET | BPF_K, Errno(1)),
      I(BPF_ALU | BPF_SUB | BPF_X, 0),  // A = arg0 - 5
      I(BPF_MISC | BPF_TAX, 0),
      I(BPF_STX, 0),
      I(BPF_LD | BPF_MEM, 0),
      I(BPF_RET | BPF_A, 0),
  };
  EXPECT_EQ(RunSeccompFilter(p, Call(0, {2})), 5u);
  EXPECT_EQ(RunSeccompFilter(p, Call(0, {0x105})), Errno(1));
  EXPECT_EQ(RunSeccompFilter(p, Call(0, {9})), 4u);
  EXPECT_EQ(RunSeccompFilter(p, Call(0, {0x1'0000'0009ull})), 4u);  // 32-bit loads
}

TEST(RunSeccompFilterTest, RefusesWhatTheKernelWould) {
  const auto ret = I(BPF_RET | BPF_K, kAllow);
  EXPECT_EQ(RunSeccompFilter({}, Call(0)), std::nullopt);
  EXPECT_EQ(RunSeccompFilter({I(BPF_LD | BPF_W | BPF_ABS, 2), ret}, Call(0)), std::nullopt);
  EXPECT_EQ(RunSeccompFilter({I(BPF_LD | BPF_W | BPF_ABS, 64), ret}, Call(0)), std::nullopt);
  EXPECT_EQ(RunSeccompFilter({I(BPF_JMP | BPF_JA, 1), ret}, Call(0)), std::nullopt);
  EXPECT_EQ(RunSeccompFilter({I(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 5), ret}, Call(0)), std::nullopt);
  EXPECT_EQ(RunSeccompFilter({I(BPF_LD | BPF_IMM, 1)}, Call(0)), std::nullopt);  // falls off
  EXPECT_EQ(RunSeccompFilter({I(BPF_LD | BPF_B | BPF_IND, 0), ret}, Call(0)), std::nullopt);
  EXPECT_EQ(RunSeccompFilter({I(BPF_ST, 16), ret}, Call(0)), std::nullopt);
  EXPECT_EQ(RunSeccompFilter({I(BPF_ALU | BPF_DIV | BPF_X, 0), ret}, Call(0)), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Against the shipped default profile and the built-in filter.

class AuditProgramsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto doc = ReadJsonFile(std::string(MCPX_SOURCE_DIR) + "/policies/seccomp/default.json");
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    auto parsed = ParseSeccompProfile(*doc);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    auto profile = CompileSeccompProfile(*parsed);
    ASSERT_TRUE(profile.ok()) << profile.status().ToString();
    auto builtin = CompileBuiltinFilter();
    ASSERT_TRUE(builtin.ok()) << builtin.status().ToString();
    production_ = {*builtin, *profile};
    auto audit = AuditPrograms(production_);
    ASSERT_TRUE(audit.ok()) << audit.status().ToString();
    audit_ = std::move(audit).value();
  }

  const SeccompProgram& profile() const { return production_[1]; }

  // The kernel's stacking: every filter runs, the lowest action (signed top half) wins, and on
  // a tie the newest filter (the last installed) wins.
  static uint32_t Stack(const std::vector<SeccompProgram>& programs, const seccomp_data& d) {
    uint32_t result = kAllow;
    for (auto it = programs.rbegin(); it != programs.rend(); ++it) {
      const uint32_t r = RunSeccompFilter(it->insns, d).value_or(0xdeadbeef);
      auto rank = [](uint32_t a) { return static_cast<int32_t>(a & SECCOMP_RET_ACTION_FULL); };
      if (it == programs.rbegin() || rank(r) < rank(result)) result = r;
    }
    return result;
  }

  std::vector<SeccompProgram> production_;
  std::vector<SeccompProgram> audit_;
};

TEST_F(AuditProgramsTest, InterpreterReadsTheCompiledProfile) {
  EXPECT_EQ(RunSeccompFilter(profile().insns, Call(SYS_read)), kAllow);
  EXPECT_EQ(RunSeccompFilter(profile().insns, Call(SYS_adjtimex)), Errno(ENOSYS));
  EXPECT_EQ(RunSeccompFilter(profile().insns, Call(SYS_syslog)), Errno(ENOSYS));
  EXPECT_EQ(RunSeccompFilter(profile().insns, Call(SYS_personality, {8})), kAllow);
  EXPECT_EQ(RunSeccompFilter(profile().insns, Call(SYS_personality, {0x40000})), Errno(ENOSYS));
  EXPECT_EQ(RunSeccompFilter(profile().insns, Call(SYS_getpid, {}, AUDIT_ARCH_I386)), kKillProcess);
}

TEST_F(AuditProgramsTest, ProfileNotifiesWhereItDenied) {
  const SeccompProgram& notifying = audit_[1];
  EXPECT_NE(notifying.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER, 0u);
  EXPECT_EQ(audit_[0].flags & SECCOMP_FILTER_FLAG_NEW_LISTENER, 0u);
  ASSERT_EQ(notifying.insns.size(), profile().insns.size());
  for (int nr = 0; nr < 460; ++nr) {
    const auto before = RunSeccompFilter(profile().insns, Call(nr));
    const auto after = RunSeccompFilter(notifying.insns, Call(nr));
    ASSERT_TRUE(before && after) << nr;
    EXPECT_EQ(*after, (*before & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ERRNO
                          ? SECCOMP_RET_USER_NOTIF
                          : *before)
        << nr;
  }
  SeccompProgram tsync = profile();
  tsync.flags = SECCOMP_FILTER_FLAG_TSYNC;
  EXPECT_NE(NotifyingProfile(tsync).flags & SECCOMP_FILTER_FLAG_TSYNC_ESRCH, 0u);
}

// The property audit rests on: where the stacked audit filters notify, the answer is the
// profile's errno, and then the code sees exactly what the production stack gives it; where
// they do not notify, they give the same result as production by themselves (built-in denials
// included, so those stay silent).
TEST_F(AuditProgramsTest, AuditStackAnswersAsProductionDoes) {
  std::vector<seccomp_data> calls;
  for (int nr = 0; nr < 460; ++nr) calls.push_back(Call(nr));
  calls.push_back(Call(SYS_ioctl, {1, 0x5412}));
  calls.push_back(Call(SYS_ioctl, {1, 0x1'0000'5412ull}));
  calls.push_back(Call(SYS_clone, {0x10000000}));  // CLONE_NEWUSER
  calls.push_back(Call(SYS_socket, {AF_VSOCK, SOCK_STREAM}));
  calls.push_back(Call(SYS_socket, {AF_NETLINK, SOCK_RAW, 9}));
  calls.push_back(Call(SYS_personality, {0x40000}));
  calls.push_back(Call(SYS_openat, {0, 0, 0100, 04755}));
  calls.push_back(Call(SYS_memfd_create, {0, 0}));
  calls.push_back(Call(SYS_getpid, {}, AUDIT_ARCH_I386));
  calls.push_back(Call(0x40000000 | SYS_getpid));
  int notified = 0;
  for (const seccomp_data& d : calls) {
    const uint32_t production = Stack(production_, d);
    uint32_t audited = Stack(audit_, d);
    if (audited == SECCOMP_RET_USER_NOTIF) {
      ++notified;
      audited = RunSeccompFilter(profile().insns, d).value_or(0);
      EXPECT_EQ(Stack({production_[0]}, d), kAllow) << "the built-in filter denies " << d.nr;
    }
    EXPECT_EQ(audited, production) << "syscall " << d.nr << " arg0 " << d.args[0];
  }
  EXPECT_GT(notified, 10);
  // Where both deny, production gives the profile's ENOSYS, not the built-in's EPERM.
  EXPECT_EQ(Stack(audit_, Call(SYS_unshare)), Errno(ENOSYS));
  EXPECT_EQ(Stack(audit_, Call(SYS_clone, {0x10000000})), Errno(EPERM));  // profile allows clone
}

TEST_F(AuditProgramsTest, RefusesAProfileThatDeniesTheListenerHandOver) {
  // A profile that denies everything: its own sendmsg could never be answered.
  SeccompProgram deny_all;
  deny_all.insns = {I(BPF_RET | BPF_K, Errno(ENOSYS))};
  const auto r = AuditPrograms({production_[0], deny_all});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sendmsg"), std::string::npos);
}

TEST(SyscallNameTest, NativeNamesAndUnknownNumbers) {
  EXPECT_EQ(SyscallName(SYS_syslog), "syslog");
  EXPECT_EQ(SyscallName(SYS_adjtimex), "adjtimex");
  EXPECT_EQ(SyscallName(9999), "syscall_9999");
  EXPECT_EQ(ErrnoOfAction(Errno(ENOSYS)), ENOSYS);
  EXPECT_EQ(ErrnoOfAction(SECCOMP_RET_ERRNO | 0xffff), 4095);
}

// ---------------------------------------------------------------------------------------------
// Live: a forked child installs the audit programs itself (no jail), the test is the server.

TEST_F(AuditProgramsTest, LiveDeniedCallIsNotifiedAndAnsweredWithTheProfilesErrno) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(sv[0]);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(90);
    for (const SeccompProgram& p : audit_) {
      const sock_fprog prog = p.fprog();
      const long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p.flags, &prog);
      if (rc < 0) _exit(91);
      if ((p.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) != 0) {
        const int fd = static_cast<int>(rc);
        if (SendFdToParent(sv[1], kSeccompListenerNote, fd) != 0) _exit(92);
        close(fd);
      }
    }
    // Denied by the profile only: notified. Denied by both: silent, the profile's ENOSYS.
    const long a = syscall(SYS_adjtimex, 0);
    const int a_err = errno;
    const long b = syscall(SYS_adjtimex, 0);
    const long u = syscall(SYS_unshare, 0);
    const int u_err = errno;
    _exit(a == -1 && a_err == ENOSYS && b == -1 && u == -1 && u_err == ENOSYS ? 0 : 93);
  }
  close(sv[1]);
  char note = 0;
  UniqueFd listener;
  ASSERT_EQ(ReceiveWithFd(sv[0], &note, 1, &listener, 0), 1);
  ASSERT_EQ(note, kSeccompListenerNote);
  ASSERT_TRUE(listener);
  close(sv[0]);

  std::vector<SeccompNotice> seen;
  SeccompAuditor auditor(std::move(listener), profile(),
                         [&](const SeccompNotice& n, const SeccompAuditor& a) {
                           EXPECT_TRUE(a.StillWaiting(n.id));
                           seen.push_back(n);
                         });
  for (;;) {
    pollfd p{auditor.fd(), POLLIN, 0};
    ASSERT_GE(poll(&p, 1, 10'000), 1) << "no notification within 10 s";
    if ((p.revents & POLLIN) != 0) {
      ASSERT_TRUE(auditor.ServeOne().ok());
      continue;
    }
    break;  // POLLHUP: the child has exited
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].nr, SYS_adjtimex);
  EXPECT_EQ(seen[0].err, ENOSYS);
  EXPECT_EQ(seen[0].tid, pid);
}

}  // namespace
}  // namespace mcpx::jail
