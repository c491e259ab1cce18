#include "jail/seccomp_audit.h"

#include <linux/audit.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "util/io.h"

namespace mcpx::jail {
namespace {

constexpr int kMaxErrno = 4095;  // the kernel's MAX_ERRNO

// The kernel ranks actions by their signed top half: KILL_PROCESS (0x80000000) is the lowest,
// ALLOW the highest; the lowest result of all filters wins.
int32_t Rank(uint32_t action) { return static_cast<int32_t>(action & SECCOMP_RET_ACTION_FULL); }

bool IsReturnK(const sock_filter& in) { return in.code == (BPF_RET | BPF_K); }
bool IsErrno(uint32_t action) { return (action & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ERRNO; }
bool UsesScratch(const sock_filter& in) {
  return in.code == (BPF_LD | BPF_MEM) || in.code == (BPF_LDX | BPF_MEM) ||
         BPF_CLASS(in.code) == BPF_ST || BPF_CLASS(in.code) == BPF_STX;
}

sock_filter Insn(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }

// Relative forward jump from `at` to `to` (BPF_JA's offset is 32 bits wide).
sock_filter JumpTo(size_t at, size_t to) {
  return Insn(BPF_JMP | BPF_JA, static_cast<uint32_t>(to - at - 1));
}

std::optional<uint32_t> Alu(uint16_t op, uint32_t a, uint32_t src) {
  switch (op) {
    case BPF_ADD:
      return a + src;
    case BPF_SUB:
      return a - src;
    case BPF_MUL:
      return a * src;
    case BPF_DIV:
      if (src == 0) return std::nullopt;
      return a / src;
    case BPF_MOD:
      if (src == 0) return std::nullopt;
      return a % src;
    case BPF_AND:
      return a & src;
    case BPF_OR:
      return a | src;
    case BPF_XOR:
      return a ^ src;
    case BPF_LSH:
      return src < 32 ? a << src : 0;
    case BPF_RSH:
      return src < 32 ? a >> src : 0;
    case BPF_NEG:
      return 0u - a;
    default:
      return std::nullopt;
  }
}

std::optional<bool> Condition(uint16_t op, uint32_t a, uint32_t src) {
  switch (op) {
    case BPF_JEQ:
      return a == src;
    case BPF_JGT:
      return a > src;
    case BPF_JGE:
      return a >= src;
    case BPF_JSET:
      return (a & src) != 0;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<uint32_t> RunSeccompFilter(const std::vector<sock_filter>& program,
                                         const seccomp_data& data) {
  unsigned char packet[sizeof(seccomp_data)];
  std::memcpy(packet, &data, sizeof(packet));
  uint32_t a = 0, x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  const size_t size = program.size();
  if (size == 0 || size > BPF_MAXINSNS) return std::nullopt;
  for (size_t pc = 0; pc < size; ++pc) {
    const sock_filter& in = program[pc];
    const uint32_t src = BPF_SRC(in.code) == BPF_X ? x : in.k;
    switch (in.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (in.k % 4 != 0 || in.k > sizeof(packet) - 4) return std::nullopt;
        std::memcpy(&a, packet + in.k, 4);
        continue;
      case BPF_LD | BPF_W | BPF_LEN:
        a = sizeof(packet);
        continue;
      case BPF_LDX | BPF_W | BPF_LEN:
        x = sizeof(packet);
        continue;
      case BPF_LD | BPF_IMM:
        a = in.k;
        continue;
      case BPF_LDX | BPF_IMM:
        x = in.k;
        continue;
      case BPF_LD | BPF_MEM:
      case BPF_LDX | BPF_MEM:
      case BPF_ST:
      case BPF_STX:
        if (in.k >= BPF_MEMWORDS) return std::nullopt;
        if (in.code == BPF_ST) mem[in.k] = a;
        if (in.code == BPF_STX) mem[in.k] = x;
        if (in.code == (BPF_LD | BPF_MEM)) a = mem[in.k];
        if (in.code == (BPF_LDX | BPF_MEM)) x = mem[in.k];
        continue;
      case BPF_MISC | BPF_TAX:
        x = a;
        continue;
      case BPF_MISC | BPF_TXA:
        a = x;
        continue;
      case BPF_RET | BPF_K:
        return in.k;
      case BPF_RET | BPF_A:
        return a;
      case BPF_JMP | BPF_JA:
        if (in.k >= size - pc - 1) return std::nullopt;
        pc += in.k;
        continue;
      default:
        break;
    }
    if (BPF_CLASS(in.code) == BPF_ALU) {
      const auto r = Alu(BPF_OP(in.code), a, src);
      if (!r) return std::nullopt;
      a = *r;
      continue;
    }
    if (BPF_CLASS(in.code) != BPF_JMP) return std::nullopt;
    const auto cond = Condition(BPF_OP(in.code), a, src);
    if (!cond) return std::nullopt;
    const size_t off = *cond ? in.jt : in.jf;
    if (off >= size - pc - 1) return std::nullopt;
    pc += off;
  }
  return std::nullopt;
}

SeccompProgram NotifyingProfile(const SeccompProgram& profile) {
  SeccompProgram p = profile;
  for (sock_filter& in : p.insns) {
    if (IsReturnK(in) && IsErrno(in.k)) in.k = SECCOMP_RET_USER_NOTIF;
  }
  p.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  if ((p.flags & SECCOMP_FILTER_FLAG_TSYNC) != 0) p.flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  return p;
}

// Layout: [built-in, each RET ERRNO|e turned into a jump to e's trampoline]
//         [one trampoline per distinct e: A = ERRNO|e; M[0] = A; jump to the profile]
//         [the profile, each return that production would let the built-in's ERRNO beat turned
//          into a jump to the tail]
//         [tail: A = M[0]; RET A]
Result<SeccompProgram> BuiltinDeferringToProfile(const SeccompProgram& builtin,
                                                 const SeccompProgram& profile) {
  for (const sock_filter& in : profile.insns) {
    if (UsesScratch(in) || in.code == (BPF_RET | BPF_A)) {
      return Internal("seccomp audit: the profile's program uses scratch memory or RET A");
    }
  }
  for (const sock_filter& in : builtin.insns) {
    if (in.code == (BPF_RET | BPF_A)) return Internal("seccomp audit: the built-in returns A");
  }
  std::map<uint32_t, size_t> trampolines;  // ERRNO|e -> its index among the trampolines
  for (const sock_filter& in : builtin.insns) {
    if (IsReturnK(in) && IsErrno(in.k)) trampolines.emplace(in.k, trampolines.size());
  }
  const size_t first_trampoline = builtin.insns.size();
  const size_t profile_start = first_trampoline + 3 * trampolines.size();
  const size_t tail = profile_start + profile.insns.size();
  if (tail + 2 > BPF_MAXINSNS) {
    return InvalidArgument("seccomp audit: the combined filter exceeds " +
                           std::to_string(BPF_MAXINSNS) + " instructions");
  }

  SeccompProgram out;
  out.flags = builtin.flags;
  out.insns = builtin.insns;
  for (size_t i = 0; i < out.insns.size(); ++i) {
    const sock_filter in = out.insns[i];
    if (IsReturnK(in) && IsErrno(in.k)) {
      out.insns[i] = JumpTo(i, first_trampoline + 3 * trampolines[in.k]);
    }
  }
  out.insns.resize(profile_start);
  for (const auto& [action, index] : trampolines) {
    const size_t at = first_trampoline + 3 * index;
    out.insns[at] = Insn(BPF_LD | BPF_IMM, action);
    out.insns[at + 1] = Insn(BPF_ST, 0);
    out.insns[at + 2] = JumpTo(at + 2, profile_start);
  }
  for (const sock_filter& in : profile.insns) {
    const size_t at = out.insns.size();
    // The profile is the newer filter: its result stands when it ranks at or below ERRNO.
    if (IsReturnK(in) && Rank(in.k) > Rank(SECCOMP_RET_ERRNO)) {
      out.insns.push_back(JumpTo(at, tail));
    } else {
      out.insns.push_back(in);
    }
  }
  out.insns.push_back(Insn(BPF_LD | BPF_MEM, 0));
  out.insns.push_back(Insn(BPF_RET | BPF_A, 0));
  return out;
}

Result<std::vector<SeccompProgram>> AuditPrograms(const std::vector<SeccompProgram>& production) {
  if (production.size() != 2) {
    return Internal("seccomp audit: expected the built-in filter and the profile");
  }
  const SeccompProgram& profile = production[1];
  // The child hands the listener over with sendmsg once the profile is in place: that call must
  // not become a notification nobody can receive yet.
  seccomp_data send{};
  send.nr = SYS_sendmsg;
  send.arch = kNativeArch;
  send.args[2] = MSG_NOSIGNAL;
  const auto verdict = RunSeccompFilter(profile.insns, send);
  if (!verdict || Rank(*verdict) <= Rank(SECCOMP_RET_ERRNO)) {
    return FailedPrecondition(
        "cannot audit this policy: its seccomp profile denies sendmsg, which the sandbox's setup "
        "needs to hand the audit listener to the server");
  }
  ASSIGN_OR_RETURN(SeccompProgram builtin, BuiltinDeferringToProfile(production[0], profile));
  std::vector<SeccompProgram> out;
  out.push_back(std::move(builtin));
  out.push_back(NotifyingProfile(profile));
  return out;
}

int ErrnoOfAction(uint32_t action) {
  const int data = static_cast<int>(action & SECCOMP_RET_DATA);
  return data > kMaxErrno ? kMaxErrno : data;
}

std::string SyscallName(int nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  std::string out = name != nullptr ? name : "syscall_" + std::to_string(nr);
  free(name);  // NOLINT: libseccomp allocates it with malloc
  return out;
}

SeccompAuditor::SeccompAuditor(UniqueFd listener, SeccompProgram profile, Hook hook)
    : listener_(std::move(listener)), profile_(std::move(profile)), hook_(std::move(hook)) {
  seccomp_notif_sizes sizes{};
  size_t size = sizeof(seccomp_notif);
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) == 0 && sizes.seccomp_notif > size) {
    size = sizes.seccomp_notif;
  }
  buf_.assign(size, 0);
}

Status SeccompAuditor::ServeOne() {
  std::fill(buf_.begin(), buf_.end(), 0);  // the kernel refuses a buffer that is not zeroed
  if (RetryEintr([&] { return ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_RECV, buf_.data()); }) !=
      0) {
    // ENOENT: the target was interrupted or killed after poll saw it.
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus(Code::kInternal, "seccomp audit: cannot receive a notification");
  }
  seccomp_notif req{};
  std::memcpy(&req, buf_.data(), sizeof(req));
  SeccompNotice n;
  n.id = req.id;
  n.tid = static_cast<pid_t>(req.pid);
  n.nr = req.data.nr;
  n.arch = req.data.arch;
  n.ip = req.data.instruction_pointer;
  for (size_t i = 0; i < n.args.size(); ++i) n.args[i] = req.data.args[i];
  // Notifications arise only where the profile returns ERRNO, so this is that errno. Never
  // SECCOMP_USER_NOTIF_FLAG_CONTINUE: a mistake here must deny, not run the call.
  const auto verdict = RunSeccompFilter(profile_.insns, req.data);
  if (verdict && IsErrno(*verdict)) {
    n.err = ErrnoOfAction(*verdict);
  } else {
    spdlog::warn("seccomp audit: the profile does not deny {} here; answering ENOSYS",
                 SyscallName(n.nr));
    n.err = ENOSYS;
  }
  if (hook_) hook_(n, *this);
  seccomp_notif_resp resp{};
  resp.id = n.id;
  resp.error = -n.err;
  resp.val = 0;
  if (RetryEintr([&] { return ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp); }) != 0 &&
      errno != ENOENT) {
    return ErrnoStatus(Code::kInternal, "seccomp audit: cannot answer a notification");
  }
  return Status::Ok();
}

bool SeccompAuditor::StillWaiting(uint64_t id) const {
  return ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

}  // namespace mcpx::jail
