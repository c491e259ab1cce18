// The steps a post-fork child runs, shared by the cold pipeline (child_pipeline.h) and a session
// forked from a zygote (session_fork.h). Each makes raw syscalls only: no allocation, no stdio,
// no glibc wrapper that talks to other threads. Each comment in the pipelines says why a step
// sits where it does; the comments here say what it does.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "jail/child_failure.h"
#include "jail/seccomp_compiler.h"

namespace mcpx::jail {

// Exit code of a child that failed during setup (after reporting on the socket).
inline constexpr int kSetupFailedExit = 125;

struct FdMapping {
  int parent_fd = -1;
  int child_fd = -1;
};

// A range of the server's address space, valid in the child too (it is a copy).
struct AddressRange {
  uintptr_t start = 0;
  uintptr_t end = 0;
};

// The wire format of a failure report.
struct FailureRecord {
  std::array<char, 120> step{};
  int err = 0;
};

void ReportChildFailure(int report_fd, ChildFailure failure);

// Runs one step; on failure reports it on `report_fd` and ends the child (kSetupFailedExit).
#define CHILD_STEP(report_fd, expr)                            \
  do {                                                         \
    if (::mcpx::jail::ChildFailure f_ = (expr); f_.failed()) { \
      ::mcpx::jail::ReportChildFailure(report_fd, f_);         \
      _exit(::mcpx::jail::kSetupFailedExit);                   \
    }                                                          \
  } while (0)

// Where this process's argv strings are (fields 48 and 49 of /proc/self/stat); empty when
// unreadable. Allocation-free.
AddressRange OwnArgArea();

// Unblocks every signal and sets every disposition to the default: the server's (or the
// zygote's) handlers and ignored signals must not reach the sandboxed code.
ChildFailure ResetSignals();
// Reads the parent's go byte on the setup socket.
ChildFailure WaitForParent(int sync_fd);
// Writes 0 ("this thread", hence this single-threaded process) to each cgroup file (v1 `tasks`,
// v2 `cgroup.procs`), opened by the parent: the kernel checks the opener's credentials.
ChildFailure JoinCgroupInChild(const std::vector<int>& tasks_fds);
ChildFailure DieWithParent();
// Not dumpable: /proc/1/{mem,environ,maps,fd} of init are closed to the sandboxed code.
ChildFailure NotDumpable();
// Wipes the server's argv strings (init's /proc/1/cmdline) and names the process mcpx-init.
ChildFailure HideServerArgs(const AddressRange& args);
ChildFailure UnshareCgroup(bool enabled);
ChildFailure SetHostname(const std::string& name);
// setsid: no controlling terminal, nothing for TIOCSTI to inject into.
ChildFailure NewSession();
// Moves the mapped fds to their numbers, points unmapped stdio at /dev/null, closes everything
// else. *sync_fd ends just above the mapped range and *note_fd (-1: none) just above it.
// `scratch` holds fds.size() slots for temporary copies.
ChildFailure MapFds(const std::vector<FdMapping>& fds, std::vector<int>& scratch, int* note_fd,
                    int* sync_fd);
ChildFailure ChangeDir(const std::string& cwd);
ChildFailure NoNewPrivs();
// Installs the programs in order; an audited program's listener goes to the parent at once.
ChildFailure InstallSeccomp(const std::vector<SeccompProgram>& programs, int report_fd);

}  // namespace mcpx::jail
