// The sandbox's own user-namespace limits (/proc/sys/user/*).
//
// Inotify instances and watches, fanotify groups and marks, and user namespaces are counted per
// user and per user namespace (ucounts), and every count is charged again at each namespace
// above, up to the server's host user in the initial namespace. A new namespace starts with no
// limits of its own, so without these one sandbox could take the host user's whole budget
// (128 inotify instances by default): other sandboxes and the user's host processes would get
// EMFILE/ENOSPC. The values are written by the child while it holds CAP_SYS_RESOURCE in its
// namespace; once capabilities are gone the code can read them but not raise them.
#pragma once

#include <array>
#include <cstddef>

#include "jail/child_failure.h"
#include "jail/policy.h"

namespace mcpx::jail {

struct UserNsLimitPlan {
  struct Entry {
    const char* path = "";  // also the step name a failure reports
    std::array<char, 24> value{};
    size_t len = 0;
  };
  std::array<Entry, 5> entries{};
  size_t count = 0;
};

// From the policy's inotify limits (fanotify groups and marks get the same numbers), and no
// nested user namespaces at all (seccomp denies creating them too; this holds without it).
UserNsLimitPlan BuildUserNsLimitPlan(const Limits& limits);

// A zygote's namespace (zygote_plan.h): room for the one user namespace each forked session
// creates, which then sets its own limits as above (nested namespaces 0 included). Nothing else is
// limited at the zygote's level: every session's counts are charged there as well, as a cold
// sandbox's are charged to the host user.
UserNsLimitPlan BuildZygoteUserNsLimitPlan(uint64_t user_namespaces);

// Child: writes each value into /proc/sys/user/ for our user namespace. A file the kernel lacks
// (built without inotify or fanotify) is skipped: there is no budget to protect then.
ChildFailure UserNsLimitsInChild(const UserNsLimitPlan& plan);

}  // namespace mcpx::jail
