// cgroup v1 against a fake cgroupfs laid out like this machine: memory, pids, cpu, cpuacct as
// separate hierarchies, an empty cgroup2 at unified/, our memory cgroup below the root.
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

class CgroupV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir();
    ASSERT_FALSE(root_.empty());
    proc_ = root_ + "/proc-self-cgroup";
    for (const char* h : {"memory", "pids", "cpu", "cpuacct", "systemd", "unified"}) {
      fs::create_directories(root_ + "/" + h);
      WriteFile(root_ + "/" + h + "/cgroup.procs", "");
    }
    WriteFile(root_ + "/unified/cgroup.controllers", "");
    mem_own_ = root_ + "/memory/process_api/abc";
    fs::create_directories(mem_own_);
    WriteFile(mem_own_ + "/cgroup.procs", std::to_string(getpid()) + "\n");
    WriteFile(
        proc_,
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n");
    fs_ = std::make_shared<FakeCgroupFs>(root_, FakeCgroupFs::Layout::kV1);
    parent_ = "/mcpx-" + std::to_string(getpid());
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<CgroupManager> Detect(bool setup = true) {
    CgroupDetectOptions o;
    o.fs_root = root_;
    o.proc_self_cgroup = proc_;
    o.setup = setup;
    o.fs = fs_;
    return CgroupManager::Detect(o);
  }

  std::string root_, proc_, mem_own_, parent_;
  std::shared_ptr<FakeCgroupFs> fs_;
};

TEST_F(CgroupV1Test, HybridMachineWithEmptyUnifiedUsesV1) {
  auto m = Detect();
  ASSERT_EQ(m->version(), CgroupVersion::kV1);
  const CgroupReport& r = m->report();
  EXPECT_TRUE(r.usable) << r.detail;
  EXPECT_EQ(r.controllers, (std::vector<std::string>{"memory", "pids", "cpu", "cpuacct"}));
  EXPECT_EQ(r.base, mem_own_ + parent_);
  EXPECT_TRUE(fs::is_directory(mem_own_ + parent_));
  EXPECT_TRUE(fs::is_directory(root_ + "/pids" + parent_));
  EXPECT_TRUE(fs::is_directory(root_ + "/cpu" + parent_));
  EXPECT_TRUE(fs::is_directory(root_ + "/cpuacct" + parent_));
  // v1 has no "no internal processes" rule: we stay where we are.
  EXPECT_EQ(ReadFile(mem_own_ + "/cgroup.procs"), std::to_string(getpid()) + "\n");
}

TEST_F(CgroupV1Test, CreateWritesLimitsInEachHierarchy) {
  auto m = Detect();
  auto cg = m->Create("s1", {64 * kMiB, 16, 1.5});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  EXPECT_EQ((*cg)->dir_fd(), -1);
  const std::string mem = mem_own_ + parent_ + "/s1";
  EXPECT_EQ(ReadFile(mem + "/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(ReadFile(mem + "/memory.memsw.limit_in_bytes"), "67108864");  // swap 0
  EXPECT_EQ(ReadFile(root_ + "/pids" + parent_ + "/s1/pids.max"), "16");
  EXPECT_EQ(ReadFile(root_ + "/cpu" + parent_ + "/s1/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(ReadFile(root_ + "/cpu" + parent_ + "/s1/cpu.cfs_quota_us"), "150000");
  EXPECT_EQ((*cg)->dirs().size(), 4u);
}

TEST_F(CgroupV1Test, WithoutSwapAccountingOnlyTheMemoryLimitIsWritten) {
  fs_->has_swap = false;
  auto m = Detect();
  auto cg = m->Create("s1", {64 * kMiB, 0, 0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const std::string mem = mem_own_ + parent_ + "/s1";
  EXPECT_EQ(ReadFile(mem + "/memory.limit_in_bytes"), "67108864");
  EXPECT_FALSE(fs::exists(mem + "/memory.memsw.limit_in_bytes"));
  EXPECT_EQ(ReadFile(root_ + "/pids" + parent_ + "/s1/pids.max"), "max");
  EXPECT_EQ(ReadFile(root_ + "/cpu" + parent_ + "/s1/cpu.cfs_quota_us"), "-1\n");  // untouched
}

TEST_F(CgroupV1Test, JointCpuCpuacctHierarchyIsOneDirectory) {
  fs::remove_all(root_ + "/cpu");
  fs::remove_all(root_ + "/cpuacct");
  fs::create_directories(root_ + "/cpu,cpuacct");
  WriteFile(root_ + "/cpu,cpuacct/cgroup.procs", "");
  WriteFile(proc_, "8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n");
  auto m = Detect();
  ASSERT_TRUE(m->report().usable) << m->report().detail;
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  EXPECT_EQ((*cg)->dirs().size(), 3u);
  const std::string cpu = root_ + "/cpu,cpuacct" + parent_ + "/s";
  EXPECT_EQ(ReadFile(cpu + "/cpu.cfs_quota_us"), "100000");
  WriteFile(cpu + "/cpuacct.usage", "2500000\n");
  EXPECT_EQ((*cg)->Usage()->cpu_usec, 2500u);
}

TEST_F(CgroupV1Test, UnprivilegedIsNotUsableAndFallsBackToRlimits) {
  fs_->read_only.insert(mem_own_);
  auto m = Detect();
  EXPECT_EQ(m->version(), CgroupVersion::kV1);
  const CgroupReport& r = m->report();
  EXPECT_FALSE(r.usable);
  EXPECT_NE(r.detail.find("not writable"), std::string::npos) << r.detail;
  EXPECT_NE(r.fix.find("RLIMIT_AS"), std::string::npos) << r.fix;
  EXPECT_FALSE(fs::exists(mem_own_ + parent_));
  auto cg = m->Create("s", {});
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.status().code(), Code::kFailedPrecondition);
}

TEST_F(CgroupV1Test, DryRunCreatesNothing) {
  auto m = Detect(/*setup=*/false);
  EXPECT_TRUE(m->report().usable) << m->report().detail;
  EXPECT_FALSE(fs::exists(mem_own_ + parent_));
}

TEST_F(CgroupV1Test, MissingPidsHierarchyIsNotUsable) {
  WriteFile(proc_, "4:memory:/process_api/abc\n1:cpu:/\n0::/\n");
  auto m = Detect();
  EXPECT_EQ(m->version(), CgroupVersion::kV1);
  EXPECT_FALSE(m->report().usable);
  EXPECT_NE(m->report().detail.find("memory and pids are needed"), std::string::npos);
}

TEST_F(CgroupV1Test, UsageParsesAccountingFiles) {
  auto m = Detect();
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const std::string mem = mem_own_ + parent_ + "/s";
  WriteFile(mem + "/memory.usage_in_bytes", "4096\n");
  WriteFile(mem + "/memory.max_usage_in_bytes", "67108864\n");
  WriteFile(mem + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  WriteFile(root_ + "/cpuacct" + parent_ + "/s/cpuacct.usage", "123456789\n");
  WriteFile(root_ + "/pids" + parent_ + "/s/pids.events", "max 7\n");
  auto u = (*cg)->Usage();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->memory_current_bytes, 4096u);
  EXPECT_EQ(u->memory_peak_bytes, 67108864u);
  EXPECT_EQ(u->oom_kills, 1u);
  EXPECT_EQ(u->cpu_usec, 123456u);  // ns -> us
  EXPECT_EQ(u->pids_limit_hits, 7u);
}

TEST_F(CgroupV1Test, DestroyKillsAndRemovesEveryHierarchyThenParentsGo) {
  auto m = Detect();
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  ASSERT_TRUE((*cg)->AddProcess(999999).ok());
  EXPECT_EQ(ReadFile(mem_own_ + parent_ + "/s/cgroup.procs"), "999999\n");
  const auto dirs = (*cg)->dirs();
  Status st = (*cg)->Destroy();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(fs_->killed, std::vector<pid_t>{999999});
  for (const auto& d : dirs) EXPECT_FALSE(fs::exists(d)) << d;
  EXPECT_TRUE((*cg)->Destroy().ok());
  m.reset();
  for (const char* h : {"memory/process_api/abc", "pids", "cpu", "cpuacct"}) {
    EXPECT_FALSE(fs::exists(root_ + "/" + h + parent_)) << h;
  }
}

TEST_F(CgroupV1Test, CreateFailureLeavesNoDirectories) {
  auto m = Detect();
  fs_->read_only.insert(root_ + "/pids" + parent_ + "/s/pids.max");
  auto cg = m->Create("s", {64 * kMiB, 16, 1.0});
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.status().message().find("pids.max"), std::string::npos) << cg.status().ToString();
  EXPECT_FALSE(fs::exists(mem_own_ + parent_ + "/s"));
  EXPECT_FALSE(fs::exists(root_ + "/pids" + parent_ + "/s"));
}

}  // namespace
}  // namespace mcpx::jail
