#include "jail/rlimits.h"

#include <algorithm>

namespace mcpx::jail {

uint64_t ProcessLimit(const Limits& limits) { return std::min(limits.nproc, limits.pids); }

RlimitPlan BuildRlimitPlan(const Limits& limits, bool in_cgroup) {
  RlimitPlan plan;
  auto add = [&plan](int resource, uint64_t value, const char* label, bool exec_only = false) {
    plan.entries[plan.count++] = {resource, static_cast<rlim_t>(value), label, exec_only};
  };
  add(RLIMIT_NOFILE, limits.nofile, "rlimit NOFILE");
  add(RLIMIT_FSIZE, limits.fsize_bytes, "rlimit FSIZE");
  add(RLIMIT_CORE, 0, "rlimit CORE");
  // Counted per user namespace (ucounts), so this is per sandbox, not per host user.
  add(RLIMIT_NPROC, in_cgroup ? limits.nproc : ProcessLimit(limits), "rlimit NPROC");
  // Also counted per user namespace since Linux 5.14, and charged up the chain to the server's
  // host user (whose processes then get EAGAIN/EMFILE): a per-sandbox bound is what keeps one
  // sandbox from draining the budget of the host user and of every other sandbox.
  add(RLIMIT_SIGPENDING, limits.sigpending, "rlimit SIGPENDING");
  add(RLIMIT_MSGQUEUE, limits.msgqueue_bytes, "rlimit MSGQUEUE");
  add(RLIMIT_MEMLOCK, kMemlockBytes, "rlimit MEMLOCK");
  if (!in_cgroup) add(RLIMIT_AS, limits.memory_bytes, "rlimit AS", /*exec_only=*/true);
  return plan;
}

RlimitPlan BuildZygoteRlimitPlan(const Limits& limits, bool in_cgroup) {
  const RlimitPlan all = BuildRlimitPlan(limits, in_cgroup);
  RlimitPlan plan;
  for (size_t i = 0; i < all.count; ++i) {
    const int r = all.entries[i].resource;
    if (r == RLIMIT_NOFILE || r == RLIMIT_FSIZE || r == RLIMIT_CORE || r == RLIMIT_AS) {
      plan.entries[plan.count++] = all.entries[i];
    }
  }
  return plan;
}

namespace {

ChildFailure ApplyEntries(const RlimitPlan& plan, bool exec_only) {
  for (size_t i = 0; i < plan.count; ++i) {
    const auto& e = plan.entries[i];
    if (e.exec_only != exec_only) continue;
    struct rlimit current {};
    if (getrlimit(e.resource, &current) != 0) return ChildFail(e.label);
    rlim_t value = e.value;
    if (current.rlim_max != RLIM_INFINITY && value > current.rlim_max) value = current.rlim_max;
    const struct rlimit next { value, value };
    if (setrlimit(e.resource, &next) != 0) return ChildFail(e.label);
  }
  return ChildOk();
}

}  // namespace

ChildFailure RlimitsInChild(const RlimitPlan& plan) { return ApplyEntries(plan, false); }

ChildFailure ExecOnlyRlimitsInChild(const RlimitPlan& plan) { return ApplyEntries(plan, true); }

}  // namespace mcpx::jail
