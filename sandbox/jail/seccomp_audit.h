// Audit mode of the seccomp profile (`exec --audit`, docs/POLICIES.md "Auditing a workload").
//
// The profile's denials (SECCOMP_RET_ERRNO) become user notifications: the profile is installed
// with every `RET ERRNO|e` rewritten to `RET USER_NOTIF` and SECCOMP_FILTER_FLAG_NEW_LISTENER;
// the server receives each notification, runs the ORIGINAL compiled profile on the call's
// seccomp_data with the interpreter below, and answers with that errno. The code sees exactly
// what it would see in production, and the server learns what it was denied.
//
// Only one filter of a task may have a listener, and SECCOMP_RET_ERRNO outranks USER_NOTIF, so
// the built-in filter's own denials stay silent. Where both filters deny, production gives the
// profile's errno (the newer filter wins a tie between two ERRNOs); for audit the built-in filter
// is rebuilt to defer to the profile there (AuditPrograms), or it would answer with its EPERM.
#pragma once

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "jail/seccomp_compiler.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::jail {

// Runs a classic-BPF seccomp program on `data` as the kernel does (32-bit loads from
// seccomp_data, the seccomp subset of instructions). nullopt for what the kernel's checker would
// refuse: an unknown instruction, a misaligned or out-of-range load, a jump past the end,
// falling off the end.
std::optional<uint32_t> RunSeccompFilter(const std::vector<sock_filter>& program,
                                         const seccomp_data& data);

// The profile as installed for audit: ERRNO returns become USER_NOTIF, flags gain NEW_LISTENER
// (and TSYNC_ESRCH beside TSYNC, which the kernel requires with a listener).
SeccompProgram NotifyingProfile(const SeccompProgram& profile);

// The built-in filter for audit: where it denies with ERRNO, it runs the profile and returns
// what production's stacking would yield (the profile's result when that outranks or ties the
// built-in's ERRNO, else the built-in's errno). Refuses a profile that uses scratch memory or
// returns A (libseccomp emits neither).
Result<SeccompProgram> BuiltinDeferringToProfile(const SeccompProgram& builtin,
                                                 const SeccompProgram& profile);

// A policy's programs (built-in, profile: Policy::seccomp_programs) for an audited sandbox, in
// install order; the last one creates the listener. Also refuses a profile that would deny the
// child the sendmsg that hands the listener to the server (nobody could answer it yet).
Result<std::vector<SeccompProgram>> AuditPrograms(const std::vector<SeccompProgram>& production);

// The errno SECCOMP_RET_ERRNO|data gives (the kernel caps it at MAX_ERRNO).
int ErrnoOfAction(uint32_t action);

// "syslog" for a native syscall number, else "syscall_<nr>".
std::string SyscallName(int nr);

class SeccompAuditor;

// One denied call, before it is answered: the target is blocked in it.
struct SeccompNotice {
  uint64_t id = 0;
  pid_t tid = 0;  // the calling thread, in the server's PID namespace
  int nr = 0;
  uint32_t arch = 0;
  uint64_t ip = 0;
  std::array<uint64_t, 6> args{};
  int err = 0;  // what the profile answers (and the call returns)
};

// The server's half of an audited sandbox: the listener and the profile that decides.
class SeccompAuditor {
 public:
  // Called for each notification before it is answered, so the target is still in the call
  // (the auditor is passed for StillWaiting).
  using Hook = std::function<void(const SeccompNotice&, const SeccompAuditor&)>;

  SeccompAuditor(UniqueFd listener, SeccompProgram profile, Hook hook);

  int fd() const { return listener_.get(); }
  // Receives one notification (poll fd() for POLLIN first), calls the hook, answers it. A
  // notification whose target was interrupted or killed in between is skipped.
  Status ServeOne();
  // Whether notification `id` is still waiting for its answer (its target has not died or been
  // interrupted): check it after reading anything about the target from /proc.
  bool StillWaiting(uint64_t id) const;

 private:
  UniqueFd listener_;
  SeccompProgram profile_;
  Hook hook_;
  std::vector<char> buf_;  // struct seccomp_notif, at the size the kernel says
};

}  // namespace mcpx::jail
