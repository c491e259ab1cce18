// Checks compiled seccomp programs without forking: the classic-BPF interpreter of
// jail/seccomp_audit.h runs each program on synthetic seccomp_data and the test looks at the
// returned action.
#include "jail/seccomp_compiler.h"

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "jail/policy.h"
#include "jail/seccomp_audit.h"
#include "seccomp_results.h"

namespace mcpx::jail {
namespace {

struct Call {
  int nr;
  std::array<uint64_t, 6> args{};
  uint32_t arch = AUDIT_ARCH_X86_64;
};

// The program run on synthetic seccomp_data by the interpreter exec --audit answers with
// (seccomp_audit.h; its own tests are in seccomp_audit_test.cc). nullopt on anything the
// kernel's checker would refuse.
std::optional<uint32_t> RunBpf(const SeccompProgram& prog, const Call& call) {
  seccomp_data data{};
  data.nr = call.nr;
  data.arch = call.arch;
  for (size_t i = 0; i < 6; ++i) data.args[i] = call.args[i];
  return RunSeccompFilter(prog.insns, data);
}

Call Sys(int nr, std::array<uint64_t, 6> args = {}) { return Call{nr, args}; }

class BuiltinFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = CompileBuiltinFilter();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    prog_ = std::move(p).value();
  }
  std::optional<uint32_t> Eval(const Call& c) { return RunBpf(prog_, c); }
  SeccompProgram prog_;
};

TEST_F(BuiltinFilterTest, OrdinaryCallsAreAllowed) {
  for (int nr : {SYS_read, SYS_write, SYS_openat, SYS_mmap, SYS_futex, SYS_execve, SYS_getpid,
                 SYS_exit_group}) {
    EXPECT_EQ(Eval(Sys(nr)), kAllow) << "syscall " << nr;
  }
}

TEST_F(BuiltinFilterTest, AttackSurfaceIsDeniedWithEperm) {
  for (int nr : {SYS_unshare,
                 SYS_setns,
                 SYS_mount,
                 SYS_umount2,
                 SYS_pivot_root,
                 SYS_chroot,
                 SYS_fsopen,
                 SYS_fsconfig,
                 SYS_fsmount,
                 SYS_fspick,
                 SYS_move_mount,
                 SYS_open_tree,
                 SYS_mount_setattr,
                 SYS_keyctl,
                 SYS_add_key,
                 SYS_request_key,
                 SYS_bpf,
                 SYS_perf_event_open,
                 SYS_lookup_dcookie,
                 SYS_userfaultfd,
                 SYS_io_uring_setup,
                 SYS_io_uring_enter,
                 SYS_io_uring_register,
                 SYS_ptrace,
                 SYS_process_vm_readv,
                 SYS_process_vm_writev,
                 SYS_kcmp,
                 SYS_pidfd_getfd,
                 SYS_process_madvise,
                 SYS_kexec_load,
                 SYS_kexec_file_load,
                 SYS_init_module,
                 SYS_finit_module,
                 SYS_delete_module,
                 SYS_reboot,
                 SYS_swapon,
                 SYS_swapoff,
                 SYS_acct,
                 SYS_quotactl,
                 SYS_syslog,
                 SYS_settimeofday,
                 SYS_clock_settime,
                 SYS_clock_adjtime,
                 SYS_sethostname,
                 SYS_setdomainname,
                 SYS_iopl,
                 SYS_ioperm,
                 SYS_vhangup,
                 SYS_mbind,
                 SYS_set_mempolicy,
                 SYS_migrate_pages,
                 SYS_move_pages,
                 SYS__sysctl,
                 SYS_sysfs,
                 SYS_ustat,
                 SYS_uselib,
                 SYS_nfsservctl,
                 SYS_open_by_handle_at,
                 SYS_name_to_handle_at}) {
    EXPECT_EQ(Eval(Sys(nr)), Errno(EPERM)) << "syscall " << nr;
  }
}

TEST_F(BuiltinFilterTest, Clone3GetsEnosysSoGlibcFallsBack) {
  EXPECT_EQ(Eval(Sys(SYS_clone3)), Errno(ENOSYS));
}

TEST_F(BuiltinFilterTest, ForeignArchitecturesAreKilled) {
  EXPECT_EQ(Eval(Call{SYS_getpid, {}, AUDIT_ARCH_I386}), kKillProcess);
  EXPECT_EQ(Eval(Call{SYS_getpid, {}, AUDIT_ARCH_AARCH64}), kKillProcess);
  // x32: same AUDIT_ARCH, bit 30 set in the number.
  EXPECT_EQ(Eval(Sys(0x40000000 | SYS_getpid)), kKillProcess);
  EXPECT_EQ(Eval(Sys(0x40000000 | SYS_mount)), kKillProcess);
}

TEST_F(BuiltinFilterTest, TerminalInjectionIoctlsAreDeniedIncludingHighBits) {
  EXPECT_EQ(Eval(Sys(SYS_ioctl, {0, 0x5412})), Errno(EPERM));
  EXPECT_EQ(Eval(Sys(SYS_ioctl, {0, 0x541C})), Errno(EPERM));
  // The kernel truncates cmd to 32 bits; a plain 64-bit compare would miss this (CVE-2019-10063).
  EXPECT_EQ(Eval(Sys(SYS_ioctl, {0, 0x100005412ull})), Errno(EPERM));
  EXPECT_EQ(Eval(Sys(SYS_ioctl, {0, 0xffffffff0000541Cull})), Errno(EPERM));
  EXPECT_EQ(Eval(Sys(SYS_ioctl, {0, 0x5401})), kAllow);  // TCGETS
  EXPECT_EQ(Eval(Sys(SYS_ioctl, {0, 0x541B})), kAllow);  // FIONREAD
}

TEST_F(BuiltinFilterTest, CloneWithNamespaceFlagsIsDenied) {
  constexpr uint64_t kThreadFlags = 0x3d0f00;  // what glibc's pthread_create passes
  EXPECT_EQ(Eval(Sys(SYS_clone, {kThreadFlags})), kAllow);
  EXPECT_EQ(Eval(Sys(SYS_clone, {0x01200011})), kAllow);  // fork(): CHILD_SETTID|CLEARTID|SIGCHLD
  for (uint64_t ns : {0x00020000ull, 0x02000000ull, 0x04000000ull, 0x08000000ull, 0x10000000ull,
                      0x20000000ull, 0x40000000ull}) {
    EXPECT_EQ(Eval(Sys(SYS_clone, {ns | 17})), Errno(EPERM)) << std::hex << ns;
  }
}

TEST_F(BuiltinFilterTest, PersonalityOnlyForSafeValues) {
  for (uint64_t ok : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull}) {
    EXPECT_EQ(Eval(Sys(SYS_personality, {ok})), kAllow) << std::hex << ok;
  }
  for (uint64_t bad : {0x0040000ull /* ADDR_NO_RANDOMIZE */, 0x0400000ull /* READ_IMPLIES_EXEC */,
                       0x1ull, 0x20009ull, 0xfffffffeull}) {
    EXPECT_EQ(Eval(Sys(SYS_personality, {bad})), Errno(EPERM)) << std::hex << bad;
  }
  // The kernel reads an unsigned int: high bits do not smuggle a bad value past the check.
  EXPECT_EQ(Eval(Sys(SYS_personality, {0x100040000ull})), Errno(EPERM));
}

TEST_F(BuiltinFilterTest, SocketFamilies) {
  for (uint64_t ok : {uint64_t{AF_UNIX}, uint64_t{AF_INET}, uint64_t{AF_INET6}}) {
    EXPECT_EQ(Eval(Sys(SYS_socket, {ok, SOCK_STREAM})), kAllow) << ok;
  }
  EXPECT_EQ(Eval(Sys(SYS_socket, {AF_ALG, SOCK_SEQPACKET})), Errno(EAFNOSUPPORT));
  EXPECT_EQ(Eval(Sys(SYS_socket, {AF_VSOCK, SOCK_STREAM})), Errno(EAFNOSUPPORT));
  EXPECT_EQ(Eval(Sys(SYS_socket, {AF_PACKET, SOCK_RAW})), Errno(EAFNOSUPPORT));
  EXPECT_EQ(Eval(Sys(SYS_socket, {0x100000000ull | AF_ALG, SOCK_SEQPACKET})), Errno(EAFNOSUPPORT));
  EXPECT_EQ(Eval(Sys(SYS_socket, {AF_NETLINK, SOCK_RAW, 0})), kAllow);  // NETLINK_ROUTE
  EXPECT_EQ(Eval(Sys(SYS_socket, {AF_NETLINK, SOCK_RAW, 9})), Errno(EPROTONOSUPPORT));  // AUDIT
}

TEST_F(BuiltinFilterTest, SetidModeBitsAreDenied) {
  constexpr int kFchmodat2 = 452;
  constexpr uint64_t kCreat = 0100;         // O_CREAT
  constexpr uint64_t kTmpfile = 020200000;  // O_TMPFILE (with O_DIRECTORY)
  for (uint64_t mode : {04755ull, 02755ull, 06755ull, 04000ull, 02000ull,
                        0x100004755ull /* high bits do not hide it */}) {
    EXPECT_EQ(Eval(Sys(SYS_chmod, {0, mode})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_fchmod, {3, mode})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_fchmodat, {3, 0, mode})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(kFchmodat2, {3, 0, mode, 0})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_creat, {0, mode})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_open, {0, kCreat | 1, mode})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_openat, {3, 0, kCreat | 1, mode})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_openat, {3, 0, kTmpfile | 2, mode})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_mknod, {0, 0100000 | mode, 0})), Errno(EPERM)) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_mknodat, {3, 0, 0100000 | mode, 0})), Errno(EPERM)) << std::oct << mode;
  }
  // Ordinary modes, the sticky bit, and opens that do not create (their mode is ignored).
  for (uint64_t mode : {0755ull, 0644ull, 0600ull, 01777ull, 0ull}) {
    EXPECT_EQ(Eval(Sys(SYS_chmod, {0, mode})), kAllow) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_fchmod, {3, mode})), kAllow) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_fchmodat, {3, 0, mode})), kAllow) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(kFchmodat2, {3, 0, mode, 0})), kAllow) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_creat, {0, mode})), kAllow) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_open, {0, kCreat | 1, mode})), kAllow) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_openat, {3, 0, kCreat | 1, mode})), kAllow) << std::oct << mode;
    EXPECT_EQ(Eval(Sys(SYS_mknod, {0, 010000 | mode, 0})), kAllow) << std::oct << mode;  // FIFO
    EXPECT_EQ(Eval(Sys(SYS_mknodat, {3, 0, 0100000 | mode, 0})), kAllow) << std::oct << mode;
  }
  EXPECT_EQ(Eval(Sys(SYS_open, {0, 0 /* O_RDONLY */, 04755})), kAllow);
  EXPECT_EQ(Eval(Sys(SYS_openat, {3, 0, 02 /* O_RDWR */, 06755})), kAllow);
}

TEST_F(BuiltinFilterTest, Openat2GetsEnosysItsModeIsOutOfReach) {
  EXPECT_EQ(Eval(Sys(SYS_openat2, {3, 0, 0, 24})), Errno(ENOSYS));
}

TEST_F(BuiltinFilterTest, MemfdMustBeSealedAgainstExec) {
  constexpr uint64_t kCloexec = 0x1, kAllowSealing = 0x2, kNoexecSeal = 0x8, kExec = 0x10;
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, kNoexecSeal})), kAllow);
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, kCloexec | kAllowSealing | kNoexecSeal})), kAllow);
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, 0})), Errno(ENOSYS));
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, kCloexec})), Errno(ENOSYS));
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, kCloexec | kAllowSealing})), Errno(ENOSYS));
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, kExec})), Errno(EPERM));
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, kExec | kNoexecSeal})), Errno(EPERM));
  EXPECT_EQ(Eval(Sys(SYS_memfd_create, {0, 0x100000000ull | kCloexec})), Errno(ENOSYS));
}

TEST_F(BuiltinFilterTest, EveryPathEndsInAReturn) {
  ASSERT_FALSE(prog_.insns.empty());
  EXPECT_LE(prog_.insns.size(), size_t{BPF_MAXINSNS});
  for (int nr = 0; nr < 512; ++nr) {
    for (uint64_t arg :
         {0ull, 1ull, 0x5412ull, 0x7E020000ull, 04755ull, 0x10ull, 0xffffffffffffffffull}) {
      EXPECT_TRUE(Eval(Sys(nr, {arg, arg, arg})).has_value()) << nr;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shipped profiles.

Result<SeccompProgram> CompileShipped(const std::string& name) {
  ASSIGN_OR_RETURN(const nlohmann::json doc,
                   ReadJsonFile(std::string(MCPX_SOURCE_DIR) + "/policies/seccomp/" + name));
  ASSIGN_OR_RETURN(const SeccompProfile profile, ParseSeccompProfile(doc));
  return CompileSeccompProfile(profile);
}

class ShippedProfileTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto p = CompileShipped(GetParam());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    prog_ = std::move(p).value();
  }
  std::optional<uint32_t> Eval(const Call& c) { return RunBpf(prog_, c); }
  SeccompProgram prog_;
};

TEST_P(ShippedProfileTest, WhatPythonCallsIsAllowed) {
  // REFERENCES.md "What Python actually calls" plus threads and subprocess.
  for (int nr : {SYS_access,
                 SYS_arch_prctl,
                 SYS_brk,
                 SYS_close,
                 SYS_execve,
                 SYS_exit_group,
                 SYS_fcntl,
                 SYS_futex,
                 SYS_getdents64,
                 SYS_getegid,
                 SYS_geteuid,
                 SYS_getgid,
                 SYS_getrandom,
                 SYS_gettid,
                 SYS_getuid,
                 SYS_ioctl,
                 SYS_lseek,
                 SYS_mmap,
                 SYS_mprotect,
                 SYS_munmap,
                 SYS_newfstatat,
                 SYS_openat,
                 SYS_pread64,
                 SYS_prlimit64,
                 SYS_read,
                 SYS_readlink,
                 SYS_rseq,
                 SYS_rt_sigaction,
                 SYS_set_robust_list,
                 SYS_set_tid_address,
                 SYS_sysinfo,
                 SYS_epoll_create1,
                 SYS_getcwd,
                 SYS_getpid,
                 SYS_madvise,
                 SYS_mkdir,
                 SYS_sched_getaffinity,
                 SYS_uname,
                 SYS_unlink,
                 SYS_write,
                 SYS_vfork,
                 SYS_pipe2,
                 SYS_dup2,
                 SYS_close_range,
                 SYS_wait4,
                 SYS_clone,
                 SYS_clock_nanosleep,
                 SYS_poll,
                 SYS_sigaltstack,
                 SYS_kill,
                 SYS_tgkill,
                 SYS_dup3,
                 SYS_ftruncate,
                 SYS_fsync,
                 SYS_statx,
                 SYS_socketpair,
                 SYS_sendmsg,
                 SYS_recvmsg,
                 SYS_exit}) {
    EXPECT_EQ(Eval(Sys(nr)), kAllow) << "syscall " << nr;
  }
}

TEST_P(ShippedProfileTest, UnlistedSyscallsGetEnosys) {
  for (int nr :
       {SYS_clone3, SYS_mount, SYS_ptrace, SYS_bpf, SYS_io_uring_setup, SYS_keyctl, SYS_unshare,
        SYS_vmsplice, SYS_io_setup, SYS_modify_ldt, SYS_kexec_load, 450, 1000}) {
    EXPECT_EQ(Eval(Sys(nr)), Errno(ENOSYS)) << "syscall " << nr;
  }
}

TEST_P(ShippedProfileTest, PersonalityByMaskedCompare) {
  for (uint64_t ok : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull}) {
    EXPECT_EQ(Eval(Sys(SYS_personality, {ok})), kAllow) << std::hex << ok;
  }
  EXPECT_EQ(Eval(Sys(SYS_personality, {0x0040000})), Errno(ENOSYS));
  EXPECT_EQ(Eval(Sys(SYS_personality, {0x100000000ull})), kAllow);  // mask drops high bits
}

TEST_P(ShippedProfileTest, ForeignArchitecturesAreKilled) {
  EXPECT_EQ(Eval(Call{SYS_getpid, {}, AUDIT_ARCH_I386}), kKillProcess);
}

INSTANTIATE_TEST_SUITE_P(Profiles, ShippedProfileTest,
                         ::testing::Values("default.json", "strict.json"));

TEST(StrictProfileTest, SocketOnlyForAfUnix) {
  auto p = CompileShipped("strict.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(RunBpf(*p, Sys(SYS_socket, {AF_UNIX, SOCK_STREAM})), kAllow);
  EXPECT_EQ(RunBpf(*p, Sys(SYS_socket, {AF_INET, SOCK_STREAM})), Errno(EAFNOSUPPORT));
  EXPECT_EQ(RunBpf(*p, Sys(SYS_socket, {0, SOCK_STREAM})), Errno(EAFNOSUPPORT));
  EXPECT_EQ(RunBpf(*p, Sys(SYS_socket, {0x100000001ull, SOCK_STREAM})), Errno(EAFNOSUPPORT));
  EXPECT_EQ(RunBpf(*p, Sys(SYS_socketpair, {AF_UNIX, SOCK_STREAM})), kAllow);
  EXPECT_EQ(RunBpf(*p, Sys(SYS_inotify_init1)), Errno(ENOSYS));
  EXPECT_EQ(RunBpf(*p, Sys(SYS_symlinkat)), Errno(ENOSYS));
}

TEST(DefaultProfileTest, LoopbackNetworkingIsAllowed) {
  auto p = CompileShipped("default.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  for (int nr : {SYS_socket, SYS_bind, SYS_listen, SYS_accept4, SYS_connect, SYS_setsockopt,
                 SYS_getsockname, SYS_sendto, SYS_recvfrom}) {
    EXPECT_EQ(RunBpf(*p, Sys(nr, {AF_INET})), kAllow) << nr;
  }
}

// ---------------------------------------------------------------------------------------------
// Compiler semantics on small inline profiles.

SeccompProgram MustCompile(const nlohmann::json& doc) {
  auto profile = ParseSeccompProfile(doc);
  EXPECT_TRUE(profile.ok()) << profile.status().ToString();
  if (!profile.ok()) return {};
  auto prog = CompileSeccompProfile(*profile);
  EXPECT_TRUE(prog.ok()) << prog.status().ToString();
  return prog.ok() ? std::move(prog).value() : SeccompProgram{};
}

TEST(CompileSeccompProfileTest, ActionsAndErrnos) {
  const auto prog = MustCompile(nlohmann::json::parse(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
      {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
      {"names": ["chmod"], "action": "SCMP_ACT_KILL"},
      {"names": ["chown"], "action": "SCMP_ACT_KILL_THREAD"},
      {"names": ["umask"], "action": "SCMP_ACT_TRAP"},
      {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    ]})"));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_read)), kAllow);
  EXPECT_EQ(RunBpf(prog, Sys(SYS_write)), kAllow);
  EXPECT_EQ(RunBpf(prog, Sys(SYS_mkdir)), Errno(EACCES));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_rmdir)), Errno(EPERM));  // OCI: absent errnoRet means EPERM
  EXPECT_EQ(RunBpf(prog, Sys(SYS_chmod)), kKillProcess);  // SCMP_ACT_KILL is a process kill here
  EXPECT_EQ(RunBpf(prog, Sys(SYS_chown)), SECCOMP_RET_KILL_THREAD);
  EXPECT_EQ(RunBpf(prog, Sys(SYS_umask)), SECCOMP_RET_TRAP);
  EXPECT_EQ(RunBpf(prog, Sys(SYS_getpid)), Errno(ENOSYS));  // same as default: skipped, same result
  EXPECT_EQ(RunBpf(prog, Sys(SYS_openat)), Errno(ENOSYS));
}

TEST(CompileSeccompProfileTest, DistinctArgumentsAreAnded) {
  const auto prog = MustCompile(nlohmann::json::parse(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [
      {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
      {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]})"));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_kill, {1, 9})), Errno(EPERM));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_kill, {1, 15})), kAllow);
  EXPECT_EQ(RunBpf(prog, Sys(SYS_kill, {2, 9})), kAllow);
}

TEST(CompileSeccompProfileTest, RepeatedArgumentIndexIsOredLikeRunc) {
  const auto prog = MustCompile(nlohmann::json::parse(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
      {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
      {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]})"));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_personality, {0})), kAllow);
  EXPECT_EQ(RunBpf(prog, Sys(SYS_personality, {8})), kAllow);
  EXPECT_EQ(RunBpf(prog, Sys(SYS_personality, {9})), Errno(ENOSYS));
}

TEST(CompileSeccompProfileTest, MaskedEqComparesUnderTheMask) {
  const auto prog = MustCompile(nlohmann::json::parse(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [
      {"index": 1, "value": 4294967295, "valueTwo": 21522, "op": "SCMP_CMP_MASKED_EQ"}]}]})"));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_ioctl, {0, 0x5412})), Errno(EPERM));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_ioctl, {0, 0x100005412ull})), Errno(EPERM));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_ioctl, {0, 0x5413})), kAllow);
}

TEST(CompileSeccompProfileTest, FlagsAreCarried) {
  const auto prog = MustCompile(nlohmann::json::parse(R"({
    "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]})"));
  EXPECT_EQ(prog.flags, unsigned{SECCOMP_FILTER_FLAG_LOG});
}

TEST(CompileSeccompProfileTest, NamesMissingOnOneListedArchitectureAreAccepted) {
  // "open" exists on x86_64 but not on aarch64.
  const auto prog = MustCompile(nlohmann::json::parse(R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
    "syscalls": [{"names": ["open", "renameat2"], "action": "SCMP_ACT_ALLOW"}]})"));
  EXPECT_EQ(RunBpf(prog, Sys(SYS_open)), kAllow);
}

}  // namespace
}  // namespace mcpx::jail
