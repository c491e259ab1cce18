// The plan a zygote forks sessions with (jail/session_fork.h): what crosses from the server to
// the zygote survives the trip, and the zygote's own sandbox leaves to the sessions what each must
// hold alone (rlimits counted per user, nested user namespaces, proc masks).
#include <sys/mount.h>
#include <sys/resource.h>

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "jail/jail.h"
#include "jail/mounts.h"
#include "jail/rlimits.h"
#include "jail/session_fork.h"
#include "jail/userns_limits.h"

namespace mcpx::jail {
namespace {

SessionPlan SamplePlan() {
  SessionPlan p;
  p.uid = 1000;
  p.gid = 1001;
  p.hostname = "sandbox";
  p.cwd = "/workspace";
  p.limits.memory_bytes = 512ull << 20;
  p.limits.pids = 64;
  p.limits.cpus = 1.5;
  p.limits.tmp_bytes = 32ull << 20;
  p.limits.shm_bytes = 8ull << 20;
  p.limits.inotify_instances = 4;
  p.in_cgroup = false;
  p.last_cap = 40;
  p.init = {.task_limit = 64, .note_fd = -1, .cpu_millis = 1500, .clock_ticks = 100};
  p.landlock.abi = 6;
  p.landlock.handled_fs = 0x7fff;
  p.landlock.scoped = 3;
  p.landlock.rules = {{"/usr", 0x0c}, {"/workspace", 0x7fff}};
  SeccompProgram prog;
  prog.flags = 0;
  prog.insns = {{0x20, 0, 0, 4}, {0x15, 1, 0, 0xc000003e}, {0x06, 0, 0, 0x7fff0000}};
  p.seccomp = {prog, prog};
  return p;
}

TEST(SessionPlanTest, SurvivesTheTripToTheZygote) {
  const SessionPlan sent = SamplePlan();
  auto got = DecodeSessionPlan(EncodeSessionPlan(sent));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const SessionPlan& p = got.value();
  EXPECT_EQ(p.uid, 1000u);
  EXPECT_EQ(p.gid, 1001u);
  EXPECT_EQ(p.hostname, "sandbox");
  EXPECT_EQ(p.cwd, "/workspace");
  EXPECT_EQ(p.limits.memory_bytes, sent.limits.memory_bytes);
  EXPECT_EQ(p.limits.cpus, 1.5);
  EXPECT_FALSE(p.in_cgroup);
  EXPECT_EQ(p.init.task_limit, 64u);
  EXPECT_EQ(p.init.cpu_millis, 1500u);
  EXPECT_EQ(p.landlock.abi, 6);
  EXPECT_EQ(p.landlock.scoped, 3u);
  ASSERT_EQ(p.landlock.rules.size(), 2u);
  EXPECT_EQ(p.landlock.rules[1].path, "/workspace");
  EXPECT_EQ(p.landlock.rules[1].access, 0x7fffu);
  ASSERT_EQ(p.seccomp.size(), 2u);
  ASSERT_EQ(p.seccomp[1].insns.size(), 3u);
  EXPECT_EQ(p.seccomp[1].insns[1].code, 0x15);
  EXPECT_EQ(p.seccomp[1].insns[1].jt, 1);
  EXPECT_EQ(p.seccomp[1].insns[1].k, 0xc000003eu);
  // The plans built from the limits are the server's, rebuilt on the zygote's side.
  const RlimitPlan want = BuildRlimitPlan(sent.limits, /*in_cgroup=*/false);
  ASSERT_EQ(p.rlimits.count, want.count);
  for (size_t i = 0; i < want.count; ++i) {
    EXPECT_EQ(p.rlimits.entries[i].resource, want.entries[i].resource);
    EXPECT_EQ(p.rlimits.entries[i].value, want.entries[i].value);
  }
  EXPECT_EQ(p.userns_limits.count, BuildUserNsLimitPlan(sent.limits).count);
}

TEST(SessionPlanTest, AMalformedPlanIsAnError) {
  EXPECT_FALSE(DecodeSessionPlan("{").ok());
  EXPECT_FALSE(DecodeSessionPlan(R"({"uid": 1})").ok());
  std::string plan = EncodeSessionPlan(SamplePlan());
  plan.replace(plan.find("\"hostname\""), 10, "\"hostnam_\"");
  EXPECT_FALSE(DecodeSessionPlan(plan).ok());
}

TEST(SessionPlanTest, ASessionMountsItsOwnMaskedProcTmpAndShm) {
  MountPlan plan = BuildSessionMountPlan(32ull << 20, 8ull << 20);
  auto find = [&](const std::string& target) {
    return std::find_if(plan.steps.begin(), plan.steps.end(),
                        [&](const MountStep& s) { return s.target == target; });
  };
  ASSERT_NE(find("/proc"), plan.steps.end());
  EXPECT_EQ(find("/proc")->kind, MountStep::Kind::kProc);
  ASSERT_NE(find("/proc/kcore"), plan.steps.end());
  EXPECT_EQ(find("/proc/kcore")->kind, MountStep::Kind::kMask);
  ASSERT_NE(find("/proc/sys"), plan.steps.end());
  EXPECT_EQ(find("/proc/sys")->kind, MountStep::Kind::kReadOnly);
  ASSERT_NE(find("/tmp"), plan.steps.end());
  EXPECT_NE(find("/tmp")->data.find("size=33554432"), std::string::npos);
  ASSERT_NE(find("/dev/shm"), plan.steps.end());
  EXPECT_NE(find("/dev/shm")->data.find("size=8388608"), std::string::npos);
  for (const MountStep& s : plan.steps) EXPECT_NE(s.kind, MountStep::Kind::kBind) << s.label;
}

TEST(SessionPlanTest, TheZygoteKeepsProcUnmaskedAndLeavesPerUserLimitsToSessions) {
  MountRequest m;
  m.tmp_bytes = 1 << 20;
  m.shm_bytes = 1 << 20;
  m.mask_proc = false;
  auto plan = BuildMountPlan(m);
  ASSERT_TRUE(plan.ok());
  bool proc = false;
  for (const MountStep& s : plan.value().steps) {
    if (s.kind == MountStep::Kind::kProc) proc = true;
    EXPECT_NE(s.kind, MountStep::Kind::kMask) << s.label;
    EXPECT_EQ(s.target.find("/proc/"), std::string::npos) << s.label;
  }
  EXPECT_TRUE(proc);

  Limits limits;
  for (bool in_cgroup : {true, false}) {
    const RlimitPlan z = BuildZygoteRlimitPlan(limits, in_cgroup);
    for (size_t i = 0; i < z.count; ++i) {
      const int r = z.entries[i].resource;
      EXPECT_TRUE(r == RLIMIT_NOFILE || r == RLIMIT_FSIZE || r == RLIMIT_CORE || r == RLIMIT_AS)
          << z.entries[i].label;
    }
    EXPECT_EQ(z.count, in_cgroup ? 3u : 4u);
  }
  const UserNsLimitPlan u = BuildZygoteUserNsLimitPlan(kZygoteSessions);
  ASSERT_EQ(u.count, 1u);
  EXPECT_STREQ(u.entries[0].path, "/proc/sys/user/max_user_namespaces");
  EXPECT_EQ(std::string(u.entries[0].value.data(), u.entries[0].len),
            std::to_string(kZygoteSessions));
  // Each session sets its own to 0 again.
  const UserNsLimitPlan s = BuildUserNsLimitPlan(limits);
  EXPECT_EQ(std::string(s.entries[s.count - 1].value.data(), s.entries[s.count - 1].len), "0");
}

}  // namespace
}  // namespace mcpx::jail
