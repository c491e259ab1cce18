// cgroup v2 against a fake cgroupfs: detection, delegation checks, the leaf move, limits, usage,
// teardown.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "fake_cgroupfs.h"
#include "jail/cgroup.h"

namespace mcpx::jail {
namespace {

using testing::FakeCgroupFs;
using testing::ReadFile;
using testing::WriteFile;
namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1ull << 20;

class CgroupV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir();
    ASSERT_FALSE(root_.empty());
    own_ = root_ + "/user.slice/user-1000.slice/user@1000.service/app.slice/mcp.scope";
    proc_ = root_ + "/proc-self-cgroup";
    fs::create_directories(own_);
    WriteFile(root_ + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    WriteFile(root_ + "/cgroup.procs", "");
    WriteFile(root_ + "/cgroup.subtree_control", "cpu memory pids\n");
    SetOwn("memory pids cpu", std::to_string(getpid()) + "\n");
    WriteFile(proc_, "0::/user.slice/user-1000.slice/user@1000.service/app.slice/mcp.scope\n");
    fs_ = std::make_shared<FakeCgroupFs>(root_, FakeCgroupFs::Layout::kV2);
  }
  void TearDown() override { fs::remove_all(root_); }

  void SetOwn(const std::string& controllers, const std::string& procs) {
    WriteFile(own_ + "/cgroup.controllers", controllers + "\n");
    WriteFile(own_ + "/cgroup.procs", procs);
    WriteFile(own_ + "/cgroup.subtree_control", "");
  }

  std::unique_ptr<CgroupManager> Detect(bool setup = true) {
    CgroupDetectOptions o;
    o.fs_root = root_;
    o.proc_self_cgroup = proc_;
    o.setup = setup;
    o.fs = fs_;
    return CgroupManager::Detect(o);
  }

  std::string root_, own_, proc_;
  std::shared_ptr<FakeCgroupFs> fs_;
};

TEST_F(CgroupV2Test, DelegatedSubtreeMovesServerIntoLeafAndEnablesControllers) {
  auto m = Detect();
  ASSERT_EQ(m->version(), CgroupVersion::kV2);
  const CgroupReport& r = m->report();
  EXPECT_TRUE(r.usable) << r.detail;
  EXPECT_EQ(r.base, own_ + "/mcpx-sandboxes");
  EXPECT_EQ(r.controllers, (std::vector<std::string>{"memory", "pids", "cpu"}));
  EXPECT_TRUE(r.fix.empty()) << r.fix;
  EXPECT_EQ(ReadFile(own_ + "/mcpx-server/cgroup.procs"), std::to_string(getpid()) + "\n");
  EXPECT_EQ(ReadFile(own_ + "/cgroup.procs"), "");
  EXPECT_EQ(ReadFile(own_ + "/cgroup.subtree_control"), "+memory +pids +cpu");
  EXPECT_EQ(ReadFile(own_ + "/mcpx-sandboxes/cgroup.subtree_control"), "+memory +pids +cpu");
}

TEST_F(CgroupV2Test, CreateWritesLimitsInKernelFormat) {
  auto m = Detect();
  ASSERT_TRUE(m->report().usable) << m->report().detail;
  auto cg = m->Create("mcpx-1-1", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const std::string dir = own_ + "/mcpx-sandboxes/mcpx-1-1";
  EXPECT_EQ(ReadFile(dir + "/memory.max"), "67108864");
  EXPECT_EQ(ReadFile(dir + "/memory.swap.max"), "0");
  EXPECT_EQ(ReadFile(dir + "/memory.oom.group"), "1");
  EXPECT_EQ(ReadFile(dir + "/pids.max"), "16");
  EXPECT_EQ(ReadFile(dir + "/cpu.max"), "100000 100000");
  EXPECT_GE((*cg)->dir_fd(), 0);
  EXPECT_EQ((*cg)->dirs(), std::vector<std::string>{dir});

  auto half = m->Create("mcpx-1-2", {0, 0, 0.5});
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  const std::string dir2 = own_ + "/mcpx-sandboxes/mcpx-1-2";
  EXPECT_EQ(ReadFile(dir2 + "/memory.max"), "max");
  EXPECT_EQ(ReadFile(dir2 + "/pids.max"), "max");
  EXPECT_EQ(ReadFile(dir2 + "/cpu.max"), "50000 100000");
}

TEST_F(CgroupV2Test, NoSwapFileMeansNoSwapLimitWritten) {
  fs_->has_swap = false;
  auto m = Detect();
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-sandboxes/s/memory.swap.max"));
}

TEST_F(CgroupV2Test, MissingCpuControllerIsUsableWithoutQuota) {
  SetOwn("memory pids", std::to_string(getpid()) + "\n");
  auto m = Detect();
  const CgroupReport& r = m->report();
  ASSERT_TRUE(r.usable) << r.detail;
  EXPECT_EQ(r.controllers, (std::vector<std::string>{"memory", "pids"}));
  EXPECT_NE(r.detail.find("cpu is not delegated"), std::string::npos) << r.detail;
  EXPECT_NE(r.fix.find("Delegate"), std::string::npos) << r.fix;
  EXPECT_EQ(ReadFile(own_ + "/cgroup.subtree_control"), "+memory +pids");
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-sandboxes/s/cpu.max"));
  EXPECT_EQ(ReadFile(own_ + "/mcpx-sandboxes/s/pids.max"), "16");
}

TEST_F(CgroupV2Test, UnwritableCgroupIsNotUsableAndSaysHowToDelegate) {
  fs_->read_only.insert(own_ + "/cgroup.subtree_control");
  auto m = Detect();
  const CgroupReport& r = m->report();
  EXPECT_EQ(m->version(), CgroupVersion::kV2);
  EXPECT_FALSE(r.usable);
  EXPECT_NE(r.detail.find("not writable"), std::string::npos) << r.detail;
  EXPECT_NE(r.fix.find("systemd-run --user --scope -p Delegate=yes"), std::string::npos) << r.fix;
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-server"));
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(cg.status().message().find("Delegate=yes"), std::string::npos);
}

TEST_F(CgroupV2Test, MissingMemoryControllerIsNotUsable) {
  SetOwn("cpu", std::to_string(getpid()) + "\n");
  auto m = Detect();
  EXPECT_EQ(m->version(), CgroupVersion::kV2);
  EXPECT_FALSE(m->report().usable);
  EXPECT_NE(m->report().detail.find("memory and pids are needed"), std::string::npos);
}

TEST_F(CgroupV2Test, OtherProcessesInOurCgroupGiveEbusyAndUndoTheMove) {
  SetOwn("memory pids cpu", std::to_string(getpid()) + "\n4242\n");
  auto m = Detect();
  const CgroupReport& r = m->report();
  EXPECT_FALSE(r.usable);
  EXPECT_NE(r.detail.find("EBUSY"), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("other processes share our cgroup"), std::string::npos) << r.detail;
  EXPECT_NE(r.fix.find("Delegate=yes"), std::string::npos);
  EXPECT_NE(ReadFile(own_ + "/cgroup.procs").find(std::to_string(getpid())), std::string::npos);
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-server"));
}

TEST_F(CgroupV2Test, DryRunChangesNothing) {
  auto m = Detect(/*setup=*/false);
  EXPECT_TRUE(m->report().usable) << m->report().detail;
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-server"));
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-sandboxes"));
  EXPECT_EQ(ReadFile(own_ + "/cgroup.subtree_control"), "");

  SetOwn("memory pids cpu", std::to_string(getpid()) + "\n4242\n");
  auto busy = Detect(/*setup=*/false);
  EXPECT_FALSE(busy->report().usable);
  EXPECT_NE(busy->report().detail.find("EBUSY"), std::string::npos) << busy->report().detail;
}

TEST_F(CgroupV2Test, SecondDetectInTheSameProcessFindsTheOriginalCgroup) {
  ASSERT_TRUE(Detect()->report().usable);
  WriteFile(proc_,
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/mcp.scope/mcpx-server\n");
  auto again = Detect();
  EXPECT_TRUE(again->report().usable) << again->report().detail;
  EXPECT_EQ(again->report().base, own_ + "/mcpx-sandboxes");
}

TEST_F(CgroupV2Test, UsageParsesAccountingFiles) {
  auto m = Detect();
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const std::string dir = own_ + "/mcpx-sandboxes/s";
  WriteFile(dir + "/memory.current", "1000\n");
  WriteFile(dir + "/memory.peak", "67100000\n");
  WriteFile(dir + "/memory.events", "low 0\nhigh 0\nmax 41\noom 2\noom_kill 1\noom_group_kill 1\n");
  WriteFile(dir + "/cpu.stat", "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n");
  WriteFile(dir + "/pids.events", "max 3\n");
  auto u = (*cg)->Usage();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->memory_current_bytes, 1000u);
  EXPECT_EQ(u->memory_peak_bytes, 67100000u);
  EXPECT_EQ(u->cpu_usec, 123456u);
  EXPECT_EQ(u->oom_kills, 1u);
  EXPECT_EQ(u->pids_limit_hits, 3u);

  // Only the group counter moved (oom.group kill): still an OOM kill.
  WriteFile(dir + "/memory.events", "oom 1\noom_kill 0\noom_group_kill 1\n");
  EXPECT_EQ((*cg)->Usage()->oom_kills, 1u);
}

TEST_F(CgroupV2Test, WithoutMemoryPeakTheLargestSeenCurrentIsReported) {
  fs_->has_memory_peak = false;
  auto m = Detect();
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const std::string dir = own_ + "/mcpx-sandboxes/s";
  WriteFile(dir + "/memory.current", "7000\n");
  EXPECT_EQ((*cg)->Usage()->memory_peak_bytes, 7000u);
  WriteFile(dir + "/memory.current", "100\n");
  auto u = (*cg)->Usage();
  EXPECT_EQ(u->memory_current_bytes, 100u);
  EXPECT_EQ(u->memory_peak_bytes, 7000u);
}

TEST_F(CgroupV2Test, DestroyKillsWithCgroupKillAndRemovesTheDirectory) {
  auto m = Detect();
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const std::string dir = own_ + "/mcpx-sandboxes/s";
  ASSERT_TRUE((*cg)->AddProcess(999999).ok());
  EXPECT_EQ(ReadFile(dir + "/cgroup.procs"), "999999\n");
  Status st = (*cg)->Destroy();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs_->killed.empty());    // cgroup.kill did it
  EXPECT_TRUE((*cg)->Destroy().ok());  // idempotent
}

TEST_F(CgroupV2Test, DestroyWithoutCgroupKillSignalsEachProcess) {
  fs_->has_cgroup_kill = false;
  auto m = Detect();
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  ASSERT_TRUE((*cg)->AddProcess(999998).ok());
  ASSERT_TRUE((*cg)->AddProcess(999999).ok());
  ASSERT_TRUE((*cg)->Destroy().ok());
  EXPECT_EQ(fs_->killed, (std::vector<pid_t>{999998, 999999}));
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-sandboxes/s"));
}

TEST_F(CgroupV2Test, DestructorsRemoveSandboxAndParent) {
  auto m = Detect();
  {
    auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
    ASSERT_TRUE(cg.ok()) << cg.status().ToString();
    ASSERT_TRUE(fs::exists(own_ + "/mcpx-sandboxes/s"));
  }
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-sandboxes/s"));
  m.reset();
  EXPECT_FALSE(fs::exists(own_ + "/mcpx-sandboxes"));
}

TEST_F(CgroupV2Test, RejectsNamesThatEscapeTheParent) {
  auto m = Detect();
  for (const char* bad : {"", ".", "..", "../x", "a/b"}) {
    auto cg = m->Create(bad, {});
    ASSERT_FALSE(cg.ok()) << bad;
    EXPECT_EQ(cg.status().code(), Code::kInvalidArgument);
  }
}

TEST_F(CgroupV2Test, ExistingNameIsAnError) {
  auto m = Detect();
  auto a = m->Create("s", {});
  ASSERT_TRUE(a.ok());
  auto b = m->Create("s", {});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kAlreadyExists);
}

TEST_F(CgroupV2Test, HybridUnifiedMountWithControllersIsPreferredOverV1) {
  const std::string hybrid = testing::MakeTempDir();
  fs::create_directories(hybrid + "/unified/mine");
  fs::create_directories(hybrid + "/memory");
  WriteFile(hybrid + "/memory/cgroup.procs", "");
  WriteFile(hybrid + "/unified/cgroup.controllers", "memory pids\n");
  WriteFile(hybrid + "/unified/mine/cgroup.controllers", "memory pids\n");
  WriteFile(hybrid + "/unified/mine/cgroup.procs", std::to_string(getpid()) + "\n");
  WriteFile(hybrid + "/unified/mine/cgroup.subtree_control", "");
  WriteFile(hybrid + "/proc", "4:memory:/\n0::/mine\n");
  CgroupDetectOptions o;
  o.fs_root = hybrid;
  o.proc_self_cgroup = hybrid + "/proc";
  o.fs = std::make_shared<FakeCgroupFs>(hybrid, FakeCgroupFs::Layout::kV2);
  {
    auto m = CgroupManager::Detect(o);
    EXPECT_EQ(m->version(), CgroupVersion::kV2);
    EXPECT_TRUE(m->report().usable) << m->report().detail;
  }
  fs::remove_all(hybrid);
}

TEST(CgroupParseTest, ProcSelfCgroup) {
  auto e = ParseProcSelfCgroup("12:cpu,cpuacct:/a\n1:name=systemd:/\n0::/user.slice/x.scope\n");
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[0].controllers, "cpu,cpuacct");
  EXPECT_EQ((*e)[0].path, "/a");
  EXPECT_EQ((*e)[2].controllers, "");
  EXPECT_EQ((*e)[2].path, "/user.slice/x.scope");
  EXPECT_FALSE(ParseProcSelfCgroup("garbage\n").ok());
  EXPECT_FALSE(ParseProcSelfCgroup("0::relative\n").ok());
}

TEST(CgroupParseTest, Counters) {
  EXPECT_EQ(ReadKeyedCounter("oom 2\noom_kill 5\n", "oom_kill"), 5u);
  EXPECT_EQ(ReadKeyedCounter("oom_kill 5\n", "oom"), std::nullopt);
  EXPECT_EQ(ReadKeyedCounter("max x\n", "max"), std::nullopt);
  EXPECT_EQ(ParseCounter("123\n"), 123u);
  EXPECT_EQ(ParseCounter("max\n"), std::nullopt);
  EXPECT_EQ(CpuMaxValue(1.0), "100000 100000");
  EXPECT_EQ(CpuMaxValue(2.0), "200000 100000");
  EXPECT_EQ(CpuMaxValue(0), "max 100000");
  EXPECT_EQ(CpuMaxValue(0.001), "1000 100000");  // the kernel's minimum quota
}

TEST(CgroupDetectTest, NothingMountedMeansNone) {
  const std::string dir = testing::MakeTempDir();
  WriteFile(dir + "/proc", "0::/\n");
  auto m = CgroupManager::Detect(dir, dir + "/proc");
  EXPECT_EQ(m->version(), CgroupVersion::kNone);
  EXPECT_FALSE(m->report().usable);
  auto cg = m->Create("s", {});
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.status().code(), Code::kFailedPrecondition);
  auto missing = CgroupManager::Detect(dir, dir + "/no-such-file");
  EXPECT_EQ(missing->version(), CgroupVersion::kNone);
  EXPECT_NE(missing->report().detail.find("ENOENT"), std::string::npos) << missing->report().detail;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mcpx::jail
