// What Spawn (jail.cc) shares with the server's side of forked sessions (session_spawn.cc):
// the parts of a sandbox's plan both build, and the setup socket's reading. Not for other users.
#pragma once

#include <sys/types.h>

#include <string>

#include "jail/child_steps.h"
#include "jail/jail.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::jail {

// What the mounts make writable, Landlock allows writing (and nothing else).
LandlockPlan SandboxLandlock(const SpawnRequest& req, int landlock_abi);
std::string SandboxCwd(const SpawnRequest& req);
// Init's watch: the process limit and the CPU rate.
InitWatch SandboxInitWatch(const Limits& limits, int note_fd, const CgroupManager* cgroups);
// A failure record from a child's setup, as the error the user reads ("<what> setup failed at
// step '...'", with a hint where one helps).
Status SetupFailure(FailureRecord rec, const std::string& program, const char* what);
// One message of the setup socket: a FailureRecord, or a note with its fd (`passed`).
ssize_t ReceiveReport(int fd, FailureRecord* rec, UniqueFd* passed);
// Until the child reports (or ends), at most kSetupDeadlineMs; serves an audited sandbox's
// notifications meanwhile (`audit` may be null).
Status WaitForChildReport(int fd, SeccompAuditor* audit);

}  // namespace mcpx::jail
