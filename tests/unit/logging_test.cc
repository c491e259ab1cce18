#include "util/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <string>

namespace mcpx {
namespace {

// The logger writes to a pipe that stands in for stderr while this lives; afterwards stderr is
// the real one again, with a logger of its own.
class StderrPipe {
 public:
  StderrPipe() {
    EXPECT_EQ(pipe2(p_, O_CLOEXEC), 0);
    saved_ = dup(STDERR_FILENO);
    EXPECT_GE(saved_, 0);
    EXPECT_EQ(dup2(p_[1], STDERR_FILENO), STDERR_FILENO);
    EXPECT_TRUE(InitLogging("info").ok());
  }
  ~StderrPipe() {
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    (void)InitLogging("info");
    close(p_[0]);
    close(p_[1]);
  }
  int read_end() const { return p_[0]; }

 private:
  int p_[2] = {-1, -1};
  int saved_ = -1;
};

// stderr is a pipe that nobody reads: logging must drop records, never block (the server's event
// loop logs). Before, this test hung in write() once the 64 KiB pipe was full.
TEST(LoggingTest, AFullStderrPipeDropsRecordsInsteadOfBlocking) {
  std::string tail;
  {
    StderrPipe err;
    const std::string kb(1024, 'x');
    for (int i = 0; i < 1000; ++i) spdlog::info("record {} {}", i, kb);  // 1 MiB into 64 KiB

    // The reader comes back: drain, then the next record says how many were lost.
    ASSERT_EQ(fcntl(err.read_end(), F_SETFL, O_NONBLOCK), 0);
    char buf[65536];
    while (read(err.read_end(), buf, sizeof buf) > 0) {
    }
    spdlog::info("after");
    ssize_t n;
    while ((n = read(err.read_end(), buf, sizeof buf)) > 0) {
      tail.append(buf, static_cast<size_t>(n));
    }
  }
  EXPECT_NE(tail.find("log lines dropped: stderr was not read]"), std::string::npos) << tail;
  EXPECT_NE(tail.find("after"), std::string::npos) << tail;
}

// Log messages carry sandbox text (a kernel's stderr, preload errors): a newline in it must not
// start a record of its own.
TEST(LoggingTest, ARecordIsOneLine) {
  std::string out;
  {
    StderrPipe err;
    spdlog::error("kernel said: {}", "boom\n2026-01-01T00:00:00.000 info forged record");
    char buf[4096];
    const ssize_t n = read(err.read_end(), buf, sizeof buf);
    ASSERT_GT(n, 0);
    out.assign(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(out.find("kernel said: boom|2026-01-01T00:00:00.000 info forged record\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
}

TEST(LoggingTest, UnknownLevelIsAnError) { EXPECT_FALSE(InitLogging("loud").ok()); }

}  // namespace
}  // namespace mcpx
