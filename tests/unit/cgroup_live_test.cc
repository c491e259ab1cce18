// The real cgroupfs of this machine, through whichever version Detect() picks (v1 here as root; a
// delegated v2 elsewhere). Skipped with the reason when neither is usable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "jail/cgroup.h"

namespace mcpx::jail {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// A child that waits until the parent has put it into the cgroup, then runs `body` and exits with
// its return value. Children never return into gtest.
template <typename F>
pid_t ForkIntoCgroup(Cgroup& cg, F body) {
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(go[1]);
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(100);
    ::_exit(body());
  }
  ::close(go[0]);
  if (pid > 0) {
    Status st = cg.AddProcess(pid);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) ::kill(pid, SIGKILL);
  }
  (void)!::write(go[1], "g", 1);
  ::close(go[1]);
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

class CgroupLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      // v2 delegation would also work unprivileged; v1 (this machine) needs root.
      manager_ = CgroupManager::Detect();
      if (manager_->version() != CgroupVersion::kV2 || !manager_->report().usable) {
        GTEST_SKIP() << "not root and no delegated cgroup v2: " << manager_->report().detail;
      }
    } else {
      manager_ = CgroupManager::Detect();
    }
    if (!manager_->report().usable) {
      GTEST_SKIP() << "no usable cgroup hierarchy: " << manager_->report().detail;
    }
    // Grandchildren of the fork test are reparented to us, so we can reap them.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  void TearDown() override {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  std::string Name(const char* what) {
    return "mcpx-live-" + std::to_string(::getpid()) + "-" + what;
  }

  std::unique_ptr<CgroupManager> manager_;
};

TEST_F(CgroupLiveTest, MemoryLimitKillsAnOversizedAllocation) {
  auto cg = manager_->Create(Name("mem"), {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const pid_t pid = ForkIntoCgroup(**cg, [] {
    const size_t size = 200 * kMiB;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 2;
    auto* bytes = static_cast<volatile char*>(p);
    for (size_t i = 0; i < size; i += 4096) bytes[i] = 1;
    return 0;  // survived: the limit did not hold
  });
  ASSERT_GT(pid, 0);
  const int status = Wait(pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto u = (*cg)->Usage();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_GE(u->oom_kills, 1u);
  EXPECT_GT(u->memory_peak_bytes, 32 * kMiB);
  EXPECT_LE(u->memory_peak_bytes, 64 * kMiB);
}

TEST_F(CgroupLiveTest, PidsLimitMakesForkFailWithEagain) {
  auto cg = manager_->Create(Name("pids"), {256 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  // Exit code: forks that succeeded; 200 when fork failed with anything but EAGAIN, 201 when
  // it never failed.
  const pid_t pid = ForkIntoCgroup(**cg, [] {
    int made = 0;
    for (int i = 0; i < 64; ++i) {
      const pid_t c = ::fork();
      if (c == 0) {
        ::pause();
        ::_exit(0);
      }
      if (c < 0) return errno == EAGAIN ? made : 200;
      ++made;
    }
    return 201;
  });
  ASSERT_GT(pid, 0);
  const int status = Wait(pid);
  ASSERT_TRUE(WIFEXITED(status));
  const int made = WEXITSTATUS(status);
  EXPECT_NE(made, 200) << "fork failed with an errno other than EAGAIN";
  EXPECT_NE(made, 201) << "fork never failed: the pids limit did not hold";
  EXPECT_LT(made, 16);
  auto u = (*cg)->Usage();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_GE(u->pids_limit_hits, 1u);
  // The paused grandchildren are still in there; Destroy must kill them to remove the cgroup.
  Status st = (*cg)->Destroy();
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(CgroupLiveTest, CpuTimeIsAccounted) {
  auto cg = manager_->Create(Name("cpu"), {64 * kMiB, 16, 1.0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  const pid_t pid = ForkIntoCgroup(**cg, [] {
    timespec t{};
    volatile uint64_t x = 0;
    do {
      for (int i = 0; i < 100000; ++i) x = x + static_cast<uint64_t>(i);
      ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while (t.tv_nsec < 50'000'000 && t.tv_sec == 0);
    return 0;
  });
  ASSERT_GT(pid, 0);
  const int status = Wait(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto u = (*cg)->Usage();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  const auto& controllers = manager_->report().controllers;
  const bool accounted =
      std::find(controllers.begin(), controllers.end(),
                manager_->version() == CgroupVersion::kV1 ? "cpuacct" : "cpu") != controllers.end();
  if (!accounted && manager_->version() == CgroupVersion::kV1) {
    GTEST_SKIP() << "no cpuacct hierarchy: cpu time is not accounted on this v1 machine";
  }
  EXPECT_GT(u->cpu_usec, 0u);
}

TEST_F(CgroupLiveTest, DestroyRemovesTheDirectories) {
  std::vector<std::string> dirs;
  {
    auto cg = manager_->Create(Name("rm"), {64 * kMiB, 16, 1.0});
    ASSERT_TRUE(cg.ok()) << cg.status().ToString();
    dirs = (*cg)->dirs();
    ASSERT_FALSE(dirs.empty());
    for (const auto& d : dirs) ASSERT_TRUE(std::filesystem::is_directory(d)) << d;
    const pid_t pid = ForkIntoCgroup(**cg, [] {
      ::pause();
      return 0;
    });
    ASSERT_GT(pid, 0);
    Status st = (*cg)->Destroy();
    ASSERT_TRUE(st.ok()) << st.ToString();
    const int status = Wait(pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (const auto& d : dirs) EXPECT_FALSE(std::filesystem::exists(d)) << d;
    EXPECT_TRUE((*cg)->Destroy().ok());
  }
  const std::string base = manager_->report().base;
  manager_.reset();
  EXPECT_FALSE(std::filesystem::exists(base)) << base;
}

TEST_F(CgroupLiveTest, SandboxDestructorKillsWhatIsLeft) {
  pid_t pid = -1;
  std::vector<std::string> dirs;
  {
    auto cg = manager_->Create(Name("dtor"), {64 * kMiB, 16, 1.0});
    ASSERT_TRUE(cg.ok()) << cg.status().ToString();
    dirs = (*cg)->dirs();
    pid = ForkIntoCgroup(**cg, [] {
      ::pause();
      return 0;
    });
    ASSERT_GT(pid, 0);
  }
  const int status = Wait(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (const auto& d : dirs) EXPECT_FALSE(std::filesystem::exists(d)) << d;
}

}  // namespace
}  // namespace mcpx::jail

namespace mcpx::jail {
namespace {

TEST_F(CgroupLiveTest, StaleFoldersOfDeadServersAreRemoved) {
  if (manager_->version() != CgroupVersion::kV1) GTEST_SKIP() << "stale cleanup is for cgroup v1";
  const std::string own = std::filesystem::path(manager_->report().base).parent_path().string();
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  Wait(dead);
  const std::string stale = own + "/mcpx-" + std::to_string(dead);
  ASSERT_EQ(::mkdir(stale.c_str(), 0755), 0) << stale;
  ASSERT_EQ(::mkdir((stale + "/mcpx-" + std::to_string(dead) + "-k1").c_str(), 0755), 0);
  auto next_server = CgroupManager::Detect();  // what a new server does at start
  EXPECT_FALSE(std::filesystem::exists(stale)) << stale << " was left behind";
  // Our own folder (a live pid) is kept.
  EXPECT_TRUE(std::filesystem::exists(manager_->report().base));
}

}  // namespace
}  // namespace mcpx::jail
