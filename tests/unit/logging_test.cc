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

// Log messages carry sandbox text (a kernel's stderr, preload errors): a newline in it must not
// start a record of its own.
TEST(LoggingTest, ARecordIsOneLine) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const int saved = dup(STDERR_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
  ASSERT_TRUE(InitLogging("info").ok());
  spdlog::error("kernel said: {}", "boom\n2026-01-01T00:00:00.000 info forged record");
  char buf[4096];
  const ssize_t n = read(p[0], buf, sizeof buf);
  dup2(saved, STDERR_FILENO);
  close(saved);
  ASSERT_TRUE(InitLogging("info").ok());
  close(p[0]);
  close(p[1]);
  ASSERT_GT(n, 0);
  const std::string out(buf, static_cast<size_t>(n));
  EXPECT_NE(out.find("kernel said: boom|2026-01-01T00:00:00.000 info forged record\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
}

TEST(LoggingTest, UnknownLevelIsAnError) { EXPECT_FALSE(InitLogging("loud").ok()); }

}  // namespace
}  // namespace mcpx
