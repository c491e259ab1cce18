#include "jail/userns_limits.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>

#include "util/io.h"

namespace mcpx::jail {

namespace {

void Add(UserNsLimitPlan& plan, const char* path, uint64_t value) {
  UserNsLimitPlan::Entry& e = plan.entries[plan.count++];
  e.path = path;
  // The kernel takes an int; the policy's bounds keep every value far below INT_MAX.
  const auto r = std::to_chars(e.value.data(), e.value.data() + e.value.size(), value);
  e.len = static_cast<size_t>(r.ptr - e.value.data());
}

}  // namespace

UserNsLimitPlan BuildZygoteUserNsLimitPlan(uint64_t user_namespaces) {
  UserNsLimitPlan plan;
  Add(plan, "/proc/sys/user/max_user_namespaces", user_namespaces);
  return plan;
}

UserNsLimitPlan BuildUserNsLimitPlan(const Limits& limits) {
  UserNsLimitPlan plan;
  Add(plan, "/proc/sys/user/max_inotify_instances", limits.inotify_instances);
  Add(plan, "/proc/sys/user/max_inotify_watches", limits.inotify_watches);
  Add(plan, "/proc/sys/user/max_fanotify_groups", limits.inotify_instances);
  Add(plan, "/proc/sys/user/max_fanotify_marks", limits.inotify_watches);
  Add(plan, "/proc/sys/user/max_user_namespaces", 0);
  return plan;
}

ChildFailure UserNsLimitsInChild(const UserNsLimitPlan& plan) {
  for (size_t i = 0; i < plan.count; ++i) {
    const UserNsLimitPlan::Entry& e = plan.entries[i];
    const int fd = open(e.path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) return ChildFail(e.path);
    const ssize_t n = RetryEintr([&] { return write(fd, e.value.data(), e.len); });
    const int err = n < 0 ? errno : EIO;
    close(fd);
    if (n != static_cast<ssize_t>(e.len)) return ChildFail(e.path, err);
  }
  return ChildOk();
}

}  // namespace mcpx::jail
