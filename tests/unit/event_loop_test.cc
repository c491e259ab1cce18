#include "util/event_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <stdexcept>

namespace mcpx {
namespace {

// One session's or one message's exception must not end the loop that serves them all.
TEST(EventLoopTest, ThrowingCallbacksDoNotEndTheLoop) {
  auto created = EventLoop::Create();
  ASSERT_TRUE(created.ok());
  EventLoop& loop = **created;
  int ran = 0;
  loop.Post([] { throw std::runtime_error("posted"); });
  loop.AddTimer(std::chrono::milliseconds(0), [] { throw std::logic_error("timer"); });
  loop.AddTimer(std::chrono::milliseconds(1), [&] {
    ++ran;
    loop.Stop();
  });
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_TRUE(loop.Add(p[0], EPOLLIN,
                       [&](uint32_t) {
                         loop.Remove(p[0]);
                         throw 42;
                       })
                  .ok());
  loop.Run();
  EXPECT_EQ(ran, 1);
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace mcpx
