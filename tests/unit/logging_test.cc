#include "util/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <string>

namespace mcpx {
namespace {

// stderr is a pipe that nobody reads: logging must drop records, never block (the server's event
// loop logs). Before, this test hung in write() once the 64 KiB pipe was full.
TEST(LoggingTest, AFullStderrPipeDropsRecordsInsteadOfBlocking) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const int saved = dup(STDERR_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
  ASSERT_TRUE(InitLogging("info").ok());
  const std::string kb(1024, 'x');
  for (int i = 0; i < 1000; ++i) spdlog::info("record {} {}", i, kb);  // 1 MiB into 64 KiB

  // The reader comes back: drain, then the next record says how many were lost.
  ASSERT_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  char buf[65536];
  while (read(p[0], buf, sizeof buf) > 0) {
  }
  spdlog::info("after");
  std::string tail;
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) tail.append(buf, static_cast<size_t>(n));

  dup2(saved, STDERR_FILENO);
  close(saved);
  ASSERT_TRUE(InitLogging("info").ok());  // a logger on the restored stderr
  close(p[0]);
  close(p[1]);
  EXPECT_NE(tail.find("log lines dropped: stderr was not read]"), std::string::npos) << tail;
  EXPECT_NE(tail.find("after"), std::string::npos) << tail;
}

TEST(LoggingTest, UnknownLevelIsAnError) { EXPECT_FALSE(InitLogging("loud").ok()); }

}  // namespace
}  // namespace mcpx
