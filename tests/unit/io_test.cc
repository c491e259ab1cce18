// util/io.h: the EINTR-safe helpers. PollUntil is the one poll with a deadline the server, the
// jail and doctor's probes share; a signal in the middle must not end the wait early.
#include "util/io.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "util/event_loop.h"
#include "util/unique_fd.h"

namespace mcpx {
namespace {

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    r.reset(p[0]);
    w.reset(p[1]);
  }
};

void OnAlarm(int) {}

TEST(PollUntilTest, ReadyBeforeTheDeadline) {
  Pipe p;
  ASSERT_EQ(WriteAll(p.w.get(), "x"), 0);
  EXPECT_EQ(PollUntil(p.r.get(), POLLIN, EventLoop::NowMs() + 5000), 1);
}

TEST(PollUntilTest, NothingByTheDeadline) {
  Pipe p;
  EXPECT_EQ(PollUntil(p.r.get(), POLLIN, EventLoop::NowMs() + 20), 0);
  EXPECT_EQ(PollUntil(p.r.get(), POLLIN, EventLoop::NowMs() - 1), 0);
}

// A signal without SA_RESTART interrupts poll with EINTR; the wait goes on to the deadline.
TEST(PollUntilTest, ASignalDoesNotEndTheWait) {
  Pipe p;
  struct sigaction sa {
  }, old{};
  sa.sa_handler = OnAlarm;
  ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
  itimerval every{{0, 5000}, {0, 5000}};  // every 5 ms
  ASSERT_EQ(setitimer(ITIMER_REAL, &every, nullptr), 0);
  const int r = PollUntil(p.r.get(), POLLIN, EventLoop::NowMs() + 100);
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  sigaction(SIGALRM, &old, nullptr);
  EXPECT_EQ(r, 0) << "errno " << errno;
}

TEST(IoTest, WriteAllThenReadAllRoundTrips) {
  Pipe p;
  const std::string text(4096, 'a');  // fits the pipe: written whole before it is read
  ASSERT_EQ(WriteAll(p.w.get(), text), 0);
  p.w.reset();
  auto back = ReadAll(p.r.get());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, text);
  EXPECT_EQ(WriteAll(-1, "x"), EBADF);
}

}  // namespace
}  // namespace mcpx
