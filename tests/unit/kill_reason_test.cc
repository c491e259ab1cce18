// KillReason and ProcessLimitReason: the precedence of the facts (decided, protocol error,
// memory, process limit, signal, exit code) and the words each one produces.
#include "session/kill_reason.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

namespace mcpx::session {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

jail::Limits TestLimits() {
  jail::Limits l;
  l.memory_bytes = 300ull << 20;
  l.pids = 40;
  l.nproc = 256;
  return l;
}

KillFacts Exited(int code, int signal = 0) {
  KillFacts f;
  f.exit = jail::ExitStatus{code, signal, false};
  return f;
}

TEST(ProcessLimitReasonTest, NamesTheLimit) {
  EXPECT_THAT(ProcessLimitReason(77), HasSubstr("process limit of 77 reached"));
}

TEST(KillReasonTest, DecidedReasonWinsOverEveryOtherFact) {
  KillFacts f = Exited(0, SIGSEGV);
  f.decided = "the session was reset";
  f.protocol_error = "the kernel sent junk";
  f.oom_killed = true;
  f.exit->task_limit = true;
  EXPECT_EQ(KillReason(f, TestLimits()), "the session was reset");
}

TEST(KillReasonTest, ProtocolErrorComesBeforeMemoryAndExit) {
  KillFacts f = Exited(0, SIGKILL);
  f.protocol_error = "the kernel sent junk";
  f.oom_killed = true;
  EXPECT_EQ(KillReason(f, TestLimits()), "the kernel sent junk");
}

TEST(KillReasonTest, OomKillNamesTheMemoryLimitInMiB) {
  KillFacts f = Exited(0, SIGKILL);
  f.oom_killed = true;
  f.has_cgroup = true;
  f.exit->task_limit = true;
  EXPECT_EQ(KillReason(f, TestLimits()), "memory limit 300 MiB exceeded");
}

TEST(KillReasonTest, NoExitAndNoOtherFactIsPlainKilled) {
  EXPECT_EQ(KillReason(KillFacts{}, TestLimits()), "killed");
}

TEST(KillReasonTest, TaskLimitNamesTheSmallerOfPidsAndNproc) {
  KillFacts f = Exited(0, SIGKILL);
  f.exit->task_limit = true;
  jail::Limits l = TestLimits();
  EXPECT_THAT(KillReason(f, l), HasSubstr("process limit of 40 reached"));
  l.nproc = 12;
  EXPECT_THAT(KillReason(f, l), HasSubstr("process limit of 12 reached"));
}

TEST(KillReasonTest, SigkillWithoutCgroupBlamesTheAddressSpaceLimit) {
  const std::string why = KillReason(Exited(0, SIGKILL), TestLimits());
  EXPECT_THAT(why, HasSubstr("SIGKILL"));
  EXPECT_THAT(why, HasSubstr("300 MiB"));
  EXPECT_THAT(why, HasSubstr("RLIMIT_AS"));
}

TEST(KillReasonTest, SigkillWithCgroupIsNamedWithoutGuessingMemory) {
  KillFacts f = Exited(0, SIGKILL);
  f.has_cgroup = true;
  const std::string why = KillReason(f, TestLimits());
  EXPECT_EQ(why, "the Python interpreter was killed by SIGKILL");
}

TEST(KillReasonTest, CrashSignalsAreCalledACrash) {
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    KillFacts f = Exited(0, sig);
    f.has_cgroup = true;
    EXPECT_THAT(KillReason(f, TestLimits()), HasSubstr("(a crash")) << sig;
  }
  KillFacts term = Exited(0, SIGTERM);
  term.has_cgroup = true;
  const std::string why = KillReason(term, TestLimits());
  EXPECT_THAT(why, HasSubstr("killed by SIGTERM"));
  EXPECT_THAT(why, Not(HasSubstr("crash")));
}

TEST(KillReasonTest, ExitCodeAbove128IsReadAsTheShellsSignal) {
  KillFacts f = Exited(128 + SIGSEGV);
  f.has_cgroup = true;
  EXPECT_THAT(KillReason(f, TestLimits()), HasSubstr("killed by SIGSEGV"));
  // 128 + 9 without a cgroup is read as SIGKILL, with the memory guess.
  EXPECT_THAT(KillReason(Exited(128 + SIGKILL), TestLimits()), HasSubstr("RLIMIT_AS"));
}

TEST(KillReasonTest, ExitCodesOutsideTheSignalRangeAreExitCodes) {
  EXPECT_EQ(KillReason(Exited(3), TestLimits()),
            "the Python interpreter exited with code 3 (os._exit() or a fatal error)");
  EXPECT_THAT(KillReason(Exited(128), TestLimits()), HasSubstr("exited with code 128"));
  EXPECT_THAT(KillReason(Exited(128 + 65), TestLimits()), HasSubstr("exited with code 193"));
}

}  // namespace
}  // namespace mcpx::session
