// Why a kernel was killed, in words a model can act on. Pure functions of what the session saw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "jail/jail.h"
#include "jail/policy.h"

namespace mcpx::session {

std::string ProcessLimitReason(uint64_t limit);

struct KillFacts {
  std::string decided;         // set by whoever killed the kernel (timeout, disk budget, reset)
  std::string protocol_error;  // the kernel broke its control protocol
  bool oom_killed = false;     // the cgroup's OOM kill count grew during the cell
  bool has_cgroup = false;
  std::optional<jail::ExitStatus> exit;  // nullopt: the kernel did not end on its own
};

// The first of: the decided reason, the protocol error, the memory limit, the process limit, the
// signal (a crash named as one), the exit code.
std::string KillReason(const KillFacts& facts, const jail::Limits& limits);

}  // namespace mcpx::session
