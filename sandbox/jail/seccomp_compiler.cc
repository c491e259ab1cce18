#include "jail/seccomp_compiler.h"

#include <endian.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "util/defer.h"
#include "util/io.h"
#include "util/unique_fd.h"

namespace mcpx::jail {
namespace {

// ---------------------------------------------------------------------------------------------
// The OCI profile, through libseccomp.

Result<uint32_t> ActionFor(const std::string& action, int errno_ret, int default_errno) {
  const int e = errno_ret < 0 ? default_errno : errno_ret;
  const auto data = static_cast<uint32_t>(e);
  if (action == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (action == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(data);
  // See the header: a hard deny must take the whole process down.
  if (action == "SCMP_ACT_KILL" || action == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (action == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (action == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (action == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(data);
  if (action == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return InvalidArgument("unsupported seccomp action '" + action + "'");
}

Result<scmp_compare> CompareFor(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return InvalidArgument("unknown seccomp operator '" + op + "'");
}

// "SCMP_ARCH_X86_64" -> libseccomp's token for "x86_64"; 0 when unknown.
uint32_t ArchToken(std::string_view oci_name) {
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  if (oci_name.substr(0, kPrefix.size()) != kPrefix) return 0;
  std::string lower(oci_name.substr(kPrefix.size()));
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower.empty()) return 0;
  return seccomp_arch_resolve_name(lower.c_str());
}

Status LibseccompError(std::string_view what, int rc) {
  return {Code::kInvalidArgument, std::string(what) + ": libseccomp refused it", -rc};
}

Result<SeccompProgram> ExportBpf(scmp_filter_ctx ctx) {
  UniqueFd fd(memfd_create("mcpx-seccomp", MFD_CLOEXEC));
  if (!fd) return ErrnoStatus(Code::kInternal, "memfd_create for the seccomp export");
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) {
    return Status(Code::kInternal, "seccomp_export_bpf failed", -rc);
  }
  const off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return ErrnoStatus(Code::kInternal, "lseek on the seccomp export");
  const auto bytes = static_cast<size_t>(size);
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0) {
    return Internal("seccomp export has " + std::to_string(bytes) +
                    " bytes, not a whole number of BPF instructions");
  }
  SeccompProgram program;
  program.insns.resize(bytes / sizeof(sock_filter));
  size_t done = 0;
  auto* out = reinterpret_cast<char*>(program.insns.data());
  while (done < bytes) {
    const ssize_t n = RetryEintr(
        [&] { return pread(fd.get(), out + done, bytes - done, static_cast<off_t>(done)); });
    if (n <= 0) return ErrnoStatus(Code::kInternal, "reading back the seccomp export");
    done += static_cast<size_t>(n);
  }
  if (program.insns.size() > BPF_MAXINSNS) {
    return InvalidArgument("seccomp program has " + std::to_string(program.insns.size()) +
                           " instructions; the kernel accepts at most " +
                           std::to_string(BPF_MAXINSNS));
  }
  return program;
}

Status AddRule(scmp_filter_ctx ctx, uint32_t action, int nr, const std::vector<scmp_arg_cmp>& cmps,
               const std::string& where) {
  const int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(cmps.size()),
                                        cmps.empty() ? nullptr : cmps.data());
  if (rc < 0) return LibseccompError(where, rc);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The built-in filter, written as BPF by hand: libseccomp can neither put two conditions on one
// argument in one rule nor compare only the low 32 bits of a range, and the complement needed
// here ("personality allowed only for these five values", "socket only for these families")
// requires both. Only the low word of an argument is loaded where the kernel reads an int: high
// bits are ignored by the kernel, so ignoring them here closes the CVE-2019-10063 bypass.

static_assert(__BYTE_ORDER == __LITTLE_ENDIAN, "argument offsets below assume little endian");

constexpr uint32_t kX32SyscallBit = 0x40000000;
constexpr uint32_t kCloneNamespaceFlags = 0x7E020000;  // CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET}
constexpr uint32_t kTiocsti = 0x5412;
constexpr uint32_t kTioclinux = 0x541C;
constexpr uint32_t kNetlinkRoute = 0;
// S_ISUID | S_ISGID: a file the code makes setuid runs as the sandbox's host uid (the workspace
// owner) for anyone on the host who can reach it.
constexpr uint32_t kSetidBits = 06000;
// O_CREAT and the O_TMPFILE bit (without O_DIRECTORY): the opens that take a mode.
constexpr uint32_t kOpenTakesMode = 0100 | 020000000;
// <linux/memfd.h> of older headers lacks these (Linux 6.3).
constexpr uint32_t kMfdNoexecSeal = 0x0008;
constexpr uint32_t kMfdExec = 0x0010;
// Linux 6.6; the same number on x86_64 and aarch64 (the unified table).
constexpr uint32_t kSysFchmodat2 = 452;

constexpr uint32_t NrOffset() { return offsetof(seccomp_data, nr); }
constexpr uint32_t ArchOffset() { return offsetof(seccomp_data, arch); }
constexpr uint32_t ArgLowOffset(uint32_t i) {
  return static_cast<uint32_t>(offsetof(seccomp_data, args)) + 8 * i;
}

// Denied with EPERM: new namespaces and mounts, keyrings, kernel-wide state, tracing and
// cross-process memory access, and interfaces that widen exploit windows (REFERENCES.md).
constexpr long kDeniedSyscalls[] = {
    SYS_unshare,
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
    SYS_vhangup,
    SYS_mbind,
    SYS_set_mempolicy,
    SYS_migrate_pages,
    SYS_move_pages,
    SYS_open_by_handle_at,
    SYS_name_to_handle_at,
#ifdef SYS_iopl
    SYS_iopl,
#endif
#ifdef SYS_ioperm
    SYS_ioperm,
#endif
#ifdef SYS__sysctl
    SYS__sysctl,
#endif
#ifdef SYS_sysfs
    SYS_sysfs,
#endif
#ifdef SYS_ustat
    SYS_ustat,
#endif
#ifdef SYS_uselib
    SYS_uselib,
#endif
#ifdef SYS_nfsservctl
    SYS_nfsservctl,
#endif
#ifdef SYS_quotactl_fd
    SYS_quotactl_fd,
#endif
};

// Allowed personality(2) values: PER_LINUX, PER_LINUX32, UNAME26 variants and the 0xffffffff
// query. Everything else (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weakens the process.
constexpr uint32_t kAllowedPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// Socket families code may open. AF_NETLINK only for NETLINK_ROUTE (glibc's getaddrinfo and
// getifaddrs use it; it is per network namespace, and ours is empty). AF_ALG, AF_VSOCK (not
// namespaced), AF_PACKET and the rest get EAFNOSUPPORT, as if the kernel lacked them.
constexpr uint32_t kAllowedFamilies[] = {AF_UNIX, AF_INET, AF_INET6};

// A tiny assembler with forward labels. Jump offsets are relative and 8 bits wide, so Finish()
// checks each one fits.
class BpfAssembler {
 public:
  using Label = size_t;
  static constexpr Label kNext = std::numeric_limits<size_t>::max();

  Label NewLabel() {
    labels_.push_back(kUnbound);
    return labels_.size() - 1;
  }
  void Bind(Label l) { labels_[l] = insns_.size(); }
  void LoadWord(uint32_t offset) { Emit(BPF_LD | BPF_W | BPF_ABS, offset); }
  void Return(uint32_t action) { Emit(BPF_RET | BPF_K, action); }
  void Goto(Label target) {
    fixups_.push_back({insns_.size(), target, kNext, true});
    Emit(BPF_JMP | BPF_JA, 0);
  }
  // if (A <op> k) goto jt else goto jf
  void JumpIf(uint16_t op, uint32_t k, Label jt, Label jf) {
    fixups_.push_back({insns_.size(), jt, jf, false});
    Emit(static_cast<uint16_t>(BPF_JMP | op | BPF_K), k);
  }

  Result<std::vector<sock_filter>> Finish() {
    for (const Fixup& f : fixups_) {
      ASSIGN_OR_RETURN(const uint32_t jt, Offset(f.at, f.jt));
      ASSIGN_OR_RETURN(const uint32_t jf, Offset(f.at, f.jf));
      if (f.unconditional) {
        insns_[f.at].k = jt;
        continue;
      }
      if (jt > 255 || jf > 255) return Internal("built-in seccomp filter: jump out of range");
      insns_[f.at].jt = static_cast<uint8_t>(jt);
      insns_[f.at].jf = static_cast<uint8_t>(jf);
    }
    return insns_;
  }

 private:
  static constexpr size_t kUnbound = std::numeric_limits<size_t>::max();
  struct Fixup {
    size_t at;
    Label jt;
    Label jf;
    bool unconditional;
  };

  void Emit(uint16_t code, uint32_t k) { insns_.push_back(sock_filter{code, 0, 0, k}); }

  Result<uint32_t> Offset(size_t at, Label l) const {
    if (l == kNext) return 0u;
    if (labels_[l] == kUnbound || labels_[l] <= at) {
      return Internal("built-in seccomp filter: bad label");
    }
    return static_cast<uint32_t>(labels_[l] - at - 1);
  }

  std::vector<sock_filter> insns_;
  std::vector<size_t> labels_;
  std::vector<Fixup> fixups_;
};

}  // namespace

Result<SeccompProgram> CompileSeccompProfile(const SeccompProfile& profile) {
  ASSIGN_OR_RETURN(
      const uint32_t default_action,
      ActionFor(profile.default_action, profile.default_errno_ret, profile.default_errno_ret));
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (ctx == nullptr) return Internal("seccomp_init failed (unsupported default action?)");
  Defer release([ctx] { seccomp_release(ctx); });

  // A syscall from a foreign architecture never reaches the allow-list.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return LibseccompError("setting the bad-architecture action", rc);
  }
  // The child sets no_new_privs itself before installing the bytes.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); rc < 0) {
    return LibseccompError("clearing the NNP attribute", rc);
  }
  // A binary tree instead of a linear chain: ~300 allowed names cost log(n) compares per call.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) {
    return LibseccompError("enabling the binary-tree optimization", rc);
  }
  // Listed architectures are checked but only the native one is compiled (seccomp_init holds
  // it). A foreign section could only matter for calls that the built-in filter kills first
  // (i386, x32) or that this kernel never makes (aarch64 on x86_64); without one they meet the
  // bad-architecture kill here as well. Each extra section roughly tripled the compile time,
  // which `exec` pays on every run.
  for (size_t i = 0; i < profile.architectures.size(); ++i) {
    const std::string& name = profile.architectures[i];
    if (ArchToken(name) == 0) {
      return InvalidArgument("architectures[" + std::to_string(i) + "] '" + name +
                             "': unknown architecture");
    }
  }

  for (size_t r = 0; r < profile.syscalls.size(); ++r) {
    const SeccompRule& rule = profile.syscalls[r];
    const std::string where = "syscalls[" + std::to_string(r) + "]";
    ASSIGN_OR_RETURN(const uint32_t action,
                     ActionFor(rule.action, rule.errno_ret, profile.default_errno_ret));
    // libseccomp refuses rules whose action equals the default; they change nothing.
    if (action == default_action) continue;

    std::vector<scmp_arg_cmp> cmps;
    bool repeated_index = false;
    for (const SeccompArg& a : rule.args) {
      ASSIGN_OR_RETURN(const scmp_compare op, CompareFor(a.op));
      for (const scmp_arg_cmp& c : cmps) repeated_index |= c.arg == a.index;
      cmps.push_back(scmp_arg_cmp{a.index, op, a.value, a.value_two});
    }

    for (size_t n = 0; n < rule.names.size(); ++n) {
      const std::string& name = rule.names[n];
      const std::string name_where = where + ".names[" + std::to_string(n) + "] '" + name + "'";
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      // Not a syscall of the native architecture: the built-in filter kills every foreign
      // architecture, so a rule that only exists there can never match here.
      if (nr == __NR_SCMP_ERROR) continue;
      if (!repeated_index) {
        RETURN_IF_ERROR(AddRule(ctx, action, nr, cmps, name_where));
        continue;
      }
      for (const scmp_arg_cmp& c : cmps) RETURN_IF_ERROR(AddRule(ctx, action, nr, {c}, name_where));
    }
  }

  ASSIGN_OR_RETURN(SeccompProgram program, ExportBpf(ctx));
  for (const std::string& flag : profile.flags) {
    if (flag == "SECCOMP_FILTER_FLAG_LOG") {
      program.flags |= SECCOMP_FILTER_FLAG_LOG;
    } else if (flag == "SECCOMP_FILTER_FLAG_TSYNC") {
      program.flags |= SECCOMP_FILTER_FLAG_TSYNC;
    } else {
      return InvalidArgument("flags: unsupported seccomp flag '" + flag + "'");
    }
  }
  return program;
}

Result<SeccompProgram> CompileBuiltinFilter() {
  BpfAssembler a;
  const auto kill = a.NewLabel();
  const auto allow = a.NewLabel();
  const auto eperm = a.NewLabel();
  const auto enosys = a.NewLabel();
  const auto eafnosupport = a.NewLabel();
  const auto eprotonosupport = a.NewLabel();
  const auto ioctl = a.NewLabel();
  const auto clone = a.NewLabel();
  const auto personality = a.NewLabel();
  const auto socket = a.NewLabel();
  const auto kNext = BpfAssembler::kNext;

  // Foreign architectures first: on i386, socketcall hides socket()'s arguments and syscall
  // numbers differ, so nothing below would mean what it says.
  a.LoadWord(ArchOffset());
  a.JumpIf(BPF_JEQ, kNativeArch, kNext, kill);
  a.LoadWord(NrOffset());
#if defined(__x86_64__)
  // x32 syscalls carry AUDIT_ARCH_X86_64 but set bit 30 of the number.
  a.JumpIf(BPF_JGE, kX32SyscallBit, kill, kNext);
#endif
  a.JumpIf(BPF_JEQ, SYS_ioctl, ioctl, kNext);
  a.JumpIf(BPF_JEQ, SYS_clone, clone, kNext);
  // clone3's flags live in memory seccomp cannot read; ENOSYS makes glibc fall back to clone.
  a.JumpIf(BPF_JEQ, SYS_clone3, enosys, kNext);
  a.JumpIf(BPF_JEQ, SYS_personality, personality, kNext);
  a.JumpIf(BPF_JEQ, SYS_socket, socket, kNext);
  // Set-id bits never reach a file: the mode argument of the chmod family, of creating opens
  // and of mknod is checked by masked compare on its low word (the kernel reads a umode_t).
  const auto mode_arg1 = a.NewLabel();
  const auto mode_arg2 = a.NewLabel();
  const auto open_mode = a.NewLabel();
  const auto openat_mode = a.NewLabel();
  const auto memfd = a.NewLabel();
#ifdef SYS_chmod
  a.JumpIf(BPF_JEQ, SYS_chmod, mode_arg1, kNext);
#endif
  a.JumpIf(BPF_JEQ, SYS_fchmod, mode_arg1, kNext);
#ifdef SYS_creat
  a.JumpIf(BPF_JEQ, SYS_creat, mode_arg1, kNext);
#endif
#ifdef SYS_mknod
  a.JumpIf(BPF_JEQ, SYS_mknod, mode_arg1, kNext);
#endif
  a.JumpIf(BPF_JEQ, SYS_fchmodat, mode_arg2, kNext);
  a.JumpIf(BPF_JEQ, kSysFchmodat2, mode_arg2, kNext);
  a.JumpIf(BPF_JEQ, SYS_mknodat, mode_arg2, kNext);
#ifdef SYS_open
  a.JumpIf(BPF_JEQ, SYS_open, open_mode, kNext);
#endif
  a.JumpIf(BPF_JEQ, SYS_openat, openat_mode, kNext);
  // openat2's mode sits in a struct seccomp cannot read; ENOSYS makes callers fall back to
  // openat (glibc's open() and Python never use it).
  a.JumpIf(BPF_JEQ, SYS_openat2, enosys, kNext);
  a.JumpIf(BPF_JEQ, SYS_memfd_create, memfd, kNext);
  for (const long nr : kDeniedSyscalls) {
    a.JumpIf(BPF_JEQ, static_cast<uint32_t>(nr), eperm, kNext);
  }
  a.Return(SECCOMP_RET_ALLOW);

  // TIOCSTI pushes input into the controlling terminal; TIOCLINUX can do the same on a VT.
  a.Bind(ioctl);
  a.LoadWord(ArgLowOffset(1));
  a.JumpIf(BPF_JEQ, kTiocsti, eperm, kNext);
  a.JumpIf(BPF_JEQ, kTioclinux, eperm, allow);

  a.Bind(clone);
  a.LoadWord(ArgLowOffset(0));
  a.JumpIf(BPF_JSET, kCloneNamespaceFlags, eperm, allow);

  a.Bind(personality);
  a.LoadWord(ArgLowOffset(0));
  for (const uint32_t p : kAllowedPersonalities) a.JumpIf(BPF_JEQ, p, allow, kNext);
  a.Goto(eperm);

  a.Bind(socket);
  const auto netlink = a.NewLabel();
  a.LoadWord(ArgLowOffset(0));
  for (const uint32_t f : kAllowedFamilies) a.JumpIf(BPF_JEQ, f, allow, kNext);
  a.JumpIf(BPF_JEQ, AF_NETLINK, netlink, eafnosupport);
  a.Bind(netlink);
  a.LoadWord(ArgLowOffset(2));
  a.JumpIf(BPF_JEQ, kNetlinkRoute, allow, eprotonosupport);

  // The mode only counts when the open creates: without O_CREAT/O_TMPFILE it is ignored (and
  // may hold anything).
  a.Bind(open_mode);
  a.LoadWord(ArgLowOffset(1));
  a.JumpIf(BPF_JSET, kOpenTakesMode, mode_arg2, allow);
  a.Bind(openat_mode);
  a.LoadWord(ArgLowOffset(2));
  a.JumpIf(BPF_JSET, kOpenTakesMode, kNext, allow);
  a.LoadWord(ArgLowOffset(3));
  a.JumpIf(BPF_JSET, kSetidBits, eperm, allow);
  a.Bind(mode_arg1);
  a.LoadWord(ArgLowOffset(1));
  a.JumpIf(BPF_JSET, kSetidBits, eperm, allow);
  a.Bind(mode_arg2);
  a.LoadWord(ArgLowOffset(2));
  a.JumpIf(BPF_JSET, kSetidBits, eperm, allow);

  // A memfd is the one writable file that may be executed (the workspace, /tmp and /dev/shm are
  // noexec): MFD_EXEC asks for that, and without MFD_NOEXEC_SEAL a host whose vm.memfd_noexec
  // is 0 makes it executable too. Sealed memfds cannot gain an x bit (F_SEAL_EXEC).
  a.Bind(memfd);
  a.LoadWord(ArgLowOffset(1));
  a.JumpIf(BPF_JSET, kMfdExec, eperm, kNext);
  a.JumpIf(BPF_JSET, kMfdNoexecSeal, allow, enosys);

  a.Bind(allow);
  a.Return(SECCOMP_RET_ALLOW);
  a.Bind(eperm);
  a.Return(SECCOMP_RET_ERRNO | EPERM);
  a.Bind(enosys);
  a.Return(SECCOMP_RET_ERRNO | ENOSYS);
  a.Bind(eafnosupport);
  a.Return(SECCOMP_RET_ERRNO | EAFNOSUPPORT);
  a.Bind(eprotonosupport);
  a.Return(SECCOMP_RET_ERRNO | EPROTONOSUPPORT);
  a.Bind(kill);
  a.Return(SECCOMP_RET_KILL_PROCESS);

  SeccompProgram program;
  ASSIGN_OR_RETURN(program.insns, a.Finish());
  return program;
}

}  // namespace mcpx::jail
