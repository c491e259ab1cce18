// The arithmetic of init's CPU-rate fallback, without a sandbox: /proc/<pid>/stat parsing, the
// charge between two samples, and the debt bucket.
#include "jail/cpu_meter.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace mcpx::jail {
namespace {

// A /proc/<pid>/stat line with the given comm and the fields this code reads; the others are
// filled as the kernel prints them, negative ones included.
std::string StatLine(int pid, const std::string& comm, int ppid, uint64_t utime, uint64_t stime,
                     uint64_t cutime, uint64_t cstime, uint64_t start) {
  return std::to_string(pid) + " (" + comm + ") S " + std::to_string(ppid) +
         " 1 1 0 -1 4194560 100 0 0 0 " + std::to_string(utime) + " " + std::to_string(stime) +
         " " + std::to_string(cutime) + " " + std::to_string(cstime) + " 20 -5 3 0 " +
         std::to_string(start) +
         " 123456 789 18446744073709551615 0 0 0 0 0 0 0 0 0 17 1 0 0 0 "
         "0 0\n";
}

ProcCpu Parse(const std::string& line) {
  ProcCpu p;
  EXPECT_TRUE(ParseProcStat(line.data(), line.size(), &p)) << line;
  return p;
}

TEST(ProcStatTest, ReadsTheTimesAfterTheLastParenthesis) {
  const ProcCpu p = Parse(StatLine(42, "python3", 7, 11, 22, 33, 44, 5555));
  EXPECT_EQ(p.pid, 42);
  EXPECT_EQ(p.ppid, 7);
  EXPECT_EQ(p.own, 33u);
  EXPECT_EQ(p.reaped, 77u);
  EXPECT_EQ(p.start, 5555u);
}

TEST(ProcStatTest, CommMayHoldSpacesAndParentheses) {
  // prctl(PR_SET_NAME) takes anything: a name that mimics the fields after it must not shift them.
  const ProcCpu p = Parse(StatLine(9, ") S 1 1 1 0 -1 0 0 0 0 0 999 999", 1, 1, 2, 3, 4, 10));
  EXPECT_EQ(p.ppid, 1);
  EXPECT_EQ(p.own, 3u);
  EXPECT_EQ(p.reaped, 7u);
  EXPECT_EQ(Parse(StatLine(9, "a (b) c", 3, 5, 0, 0, 0, 1)).own, 5u);
}

TEST(ProcStatTest, RejectsMalformedText) {
  ProcCpu p;
  for (const std::string& bad : {std::string(), std::string("12 (x"), std::string("12 (x) S 1 2"),
                                 std::string("(x) S 1 1 1 0 -1 0 0 0 0 0 1 1 1 1 20 0 1 0 5"),
                                 StatLine(1, "x", 1, 1, 1, 1, 1, 1).substr(0, 40)}) {
    EXPECT_FALSE(ParseProcStat(bad.data(), bad.size(), &p)) << bad;
  }
}

TEST(ProcStatTest, ParsesThisProcessAndSeesItsCpuTime) {
  // Burn a little CPU so the times are not all zero, then compare with getrusage.
  volatile uint64_t x = 0;
  for (uint64_t i = 0; i < 100'000'000; ++i) x = x + i;
  char buf[1024];
  const int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  ASSERT_GT(n, 0);
  ProcCpu p;
  ASSERT_TRUE(ParseProcStat(buf, static_cast<size_t>(n), &p));
  EXPECT_EQ(p.pid, getpid());
  EXPECT_EQ(p.ppid, getppid());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double rusage_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  const double stat_s = static_cast<double>(p.own) / static_cast<double>(sysconf(_SC_CLK_TCK));
  EXPECT_GT(stat_s, 0);
  EXPECT_NEAR(stat_s, rusage_s, 0.1);
}

ProcCpu Proc(int pid, int ppid, uint64_t own, uint64_t reaped, uint64_t start = 1) {
  ProcCpu p;
  p.pid = pid;
  p.ppid = ppid;
  p.own = own;
  p.reaped = reaped;
  p.start = start;
  return p;
}

TEST(CpuUsedTest, ChargesGrowthAndNewProcesses) {
  const ProcCpu prev[] = {Proc(1, 0, 1, 0), Proc(2, 1, 10, 0)};
  ProcCpu cur[] = {Proc(1, 0, 1, 0), Proc(2, 1, 35, 0), Proc(3, 2, 7, 0)};
  EXPECT_EQ(CpuUsedBetween(prev, 2, cur, 3), 25u + 7u);
  // No earlier sample: everything since the namespace began.
  EXPECT_EQ(CpuUsedBetween(nullptr, 0, cur, 3), 1u + 35u + 7u);
}

TEST(CpuUsedTest, AReapedChildIsNotChargedTwice) {
  // Child 3 was charged 20 while it lived; it used 5 more, exited, and 2 reaped it: 2's reaped
  // time grows by 25, of which only 5 is new.
  const ProcCpu prev[] = {Proc(1, 0, 0, 0), Proc(2, 1, 10, 0), Proc(3, 2, 20, 0)};
  ProcCpu cur[] = {Proc(1, 0, 0, 0), Proc(2, 1, 10, 25)};
  EXPECT_EQ(CpuUsedBetween(prev, 3, cur, 2), 5u);
}

TEST(CpuUsedTest, AnAutoReapedChildCannotHideItsParentsTime) {
  // 2 ignores SIGCHLD: the kernel discards child 3's time. The 20 charged while it lived stays
  // charged, and 2's own growth is charged in full.
  const ProcCpu prev[] = {Proc(2, 1, 10, 0), Proc(3, 2, 20, 0)};
  ProcCpu cur[] = {Proc(2, 1, 30, 0)};
  EXPECT_EQ(CpuUsedBetween(prev, 2, cur, 1), 20u);
}

TEST(CpuUsedTest, AnOrphanReapedByInit) {
  // 2 exited (reaped by 1), its child 3 was re-parented to 1 and reaped by it too.
  const ProcCpu prev[] = {Proc(1, 0, 0, 0), Proc(2, 1, 10, 0), Proc(3, 2, 20, 0)};
  ProcCpu cur[] = {Proc(1, 0, 0, 10 + 20)};
  // 3's 20 goes unmatched (its recorded parent is gone): charged again, never hidden.
  EXPECT_EQ(CpuUsedBetween(prev, 3, cur, 1), 20u);
}

TEST(CpuUsedTest, AReusedPidCountsAsANewProcess) {
  const ProcCpu prev[] = {Proc(5, 1, 100, 0, /*start=*/10)};
  ProcCpu cur[] = {Proc(5, 1, 3, 0, /*start=*/99)};
  EXPECT_EQ(CpuUsedBetween(prev, 1, cur, 1), 3u);
}

TEST(CpuBucketTest, RunsAtTheRateAndStopsAboveIt) {
  CpuBucket b;
  // One core allowed, one core used: never stopped.
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(CpuBucketTick(&b, 250'000, 250'000));
  // Clock-tick rounding over the rate is tolerated...
  EXPECT_FALSE(CpuBucketTick(&b, 260'000, 250'000));
  // ...two cores' worth is not, and is paid by stopped ticks (nothing used) at the allowance each.
  EXPECT_TRUE(CpuBucketTick(&b, 500'000, 250'000));
  EXPECT_EQ(b.debt_us, 260'000u);
  EXPECT_FALSE(CpuBucketTick(&b, 0, 250'000));
  EXPECT_EQ(b.debt_us, 10'000u);
}

TEST(CpuBucketTest, TwoBusyCoresAtHalfACoreRunOneTickInFour) {
  CpuBucket b;
  int running = 0;
  const int ticks = 400;
  bool stopped = false;
  for (int i = 0; i < ticks; ++i) {
    const uint64_t used = stopped ? 0 : 500'000;  // two cores for 250 ms
    running += stopped ? 0 : 1;
    stopped = CpuBucketTick(&b, used, 125'000);
  }
  EXPECT_NEAR(static_cast<double>(running) * 500'000 / (ticks * 250'000.0), 0.5, 0.02);
}

TEST(CpuBucketTest, DebtIsCapped) {
  CpuBucket b;
  EXPECT_TRUE(CpuBucketTick(&b, 100'000'000, 125'000));
  EXPECT_EQ(b.debt_us, b.cap_us);
}

}  // namespace
}  // namespace mcpx::jail
