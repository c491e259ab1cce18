#include "mcp/transport.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "util/event_loop.h"
#include "util/unique_fd.h"

namespace mcpx::mcp {
namespace {

using std::chrono::milliseconds;

struct Collected {
  std::vector<std::string> lines;
  int oversized = 0;
};

LineFramer MakeFramer(Collected& c, size_t max) {
  return LineFramer(
      max, [&c](std::string_view l) { c.lines.emplace_back(l); }, [&c] { ++c.oversized; });
}

TEST(LineFramerTest, SplitReadsAreJoined) {
  Collected c;
  LineFramer f = MakeFramer(c, 1024);
  const std::string input = "{\"a\":1}\n{\"b\":2}\n";
  for (char ch : input) f.Feed(std::string_view(&ch, 1));
  EXPECT_EQ(c.lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
}

TEST(LineFramerTest, SeveralMessagesInOneRead) {
  Collected c;
  LineFramer f = MakeFramer(c, 1024);
  f.Feed("one\ntwo\nthree\nfour-without-newline");
  EXPECT_EQ(c.lines, (std::vector<std::string>{"one", "two", "three"}));
  f.Feed("-yet\n");
  EXPECT_EQ(c.lines.back(), "four-without-newline-yet");
}

TEST(LineFramerTest, CrLfAndBlankLines) {
  Collected c;
  LineFramer f = MakeFramer(c, 1024);
  f.Feed("a\r\n\r\n\n  \nb\r");
  f.Feed("\n");
  EXPECT_EQ(c.lines, (std::vector<std::string>{"a", "b"}));
}

TEST(LineFramerTest, OversizedLineIsReportedOnceThenResyncs) {
  Collected c;
  LineFramer f = MakeFramer(c, 16);
  f.Feed("ok\n");
  // Arrives in pieces and never fits: reported when the cap is crossed, before its newline.
  for (int i = 0; i < 1000; ++i) {
    f.Feed("xxxxxxxxxx");
    EXPECT_LE(f.buffered(), 16u) << "memory must stay bounded while discarding";
  }
  EXPECT_EQ(c.oversized, 1);
  f.Feed("yyyy\nafter\n");
  EXPECT_EQ(c.lines, (std::vector<std::string>{"ok", "after"}));
  EXPECT_EQ(c.oversized, 1);
}

TEST(LineFramerTest, OversizedLineInsideOneChunk) {
  Collected c;
  LineFramer f = MakeFramer(c, 8);
  f.Feed("123456789\nshort\n12345678\n");
  EXPECT_EQ(c.oversized, 1);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"short", "12345678"}));
}

TEST(LineFramerTest, FinishEmitsTheLastUnterminatedLine) {
  Collected c;
  LineFramer f = MakeFramer(c, 64);
  f.Feed("a\nlast");
  f.Finish();
  EXPECT_EQ(c.lines, (std::vector<std::string>{"a", "last"}));
}

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop).value();
    int in[2], out[2];
    ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
    in_read_.reset(in[0]);
    in_write_.reset(in[1]);
    out_read_.reset(out[0]);
    out_write_.reset(out[1]);
    fcntl(out_read_.get(), F_SETFL, O_NONBLOCK);  // the test reads what is there, no more
  }

  StdioTransport::Callbacks Callbacks() {
    return {
        .on_message = [this](std::string_view l) { lines_.emplace_back(l); },
        .on_oversized = [this](size_t limit) { oversized_.push_back(limit); },
        .on_closed = [this] { ++closed_; },
    };
  }

  void Write(std::string_view s) {
    ASSERT_EQ(write(in_write_.get(), s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }

  // Runs the loop until `done` or a generous deadline (a failing test must not hang).
  template <typename F>
  void RunUntil(F done) {
    const int64_t deadline = EventLoop::NowMs() + 5000;
    while (!done() && EventLoop::NowMs() < deadline) loop_->RunOnce(milliseconds(50));
  }

  std::string ReadOut() {
    std::string got;
    char buf[65536];
    for (;;) {
      const ssize_t n = read(out_read_.get(), buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

  std::unique_ptr<EventLoop> loop_;
  UniqueFd in_read_, in_write_, out_read_, out_write_;
  std::vector<std::string> lines_;
  std::vector<size_t> oversized_;
  int closed_ = 0;
};

TEST_F(TransportTest, ReadsLinesAndStopsAtEof) {
  StdioTransport t(*loop_, in_read_.get(), out_write_.get());
  ASSERT_TRUE(t.Start(Callbacks()).ok());
  Write("{\"x\":1}\r\n{\"x\"");
  RunUntil([&] { return lines_.size() == 1; });
  Write(":2}\n\n");
  RunUntil([&] { return lines_.size() == 2; });
  EXPECT_EQ(lines_, (std::vector<std::string>{"{\"x\":1}", "{\"x\":2}"}));
  EXPECT_EQ(closed_, 0);
  in_write_.reset();
  RunUntil([&] { return closed_ > 0; });
  EXPECT_EQ(closed_, 1);
}

TEST_F(TransportTest, OversizedMessageThenResync) {
  StdioTransport t(*loop_, in_read_.get(), out_write_.get(), 32);
  ASSERT_TRUE(t.Start(Callbacks()).ok());
  Write(std::string(100, 'x') + "\n{\"ok\":true}\n");
  RunUntil([&] { return !lines_.empty(); });
  EXPECT_EQ(oversized_, std::vector<size_t>{32});
  EXPECT_EQ(lines_, std::vector<std::string>{"{\"ok\":true}"});
}

TEST_F(TransportTest, WritesCompactLinesAndReplacesInvalidUtf8) {
  StdioTransport t(*loop_, in_read_.get(), out_write_.get());
  ASSERT_TRUE(t.Start(Callbacks()).ok());
  json msg = {{"a", json::array({1, 2})}, {"s", std::string("bad \xff byte")}};
  t.Send(msg);
  const std::string out = ReadOut();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "one message, one line";
  auto parsed = json::parse(out);
  EXPECT_EQ(parsed["a"], json::array({1, 2}));
  EXPECT_EQ(parsed["s"], "bad \xEF\xBF\xBD byte");
}

TEST_F(TransportTest, SlowReaderDoesNotBlockAndGetsEverythingInOrder) {
  fcntl(out_write_.get(), F_SETPIPE_SZ, 4096);
  StdioTransport t(*loop_, in_read_.get(), out_write_.get());
  ASSERT_TRUE(t.Start(Callbacks()).ok());
  const std::string big(50000, 'z');
  for (int i = 0; i < 20; ++i) t.Send(json{{"i", i}, {"pad", big}});  // returns at once
  EXPECT_GT(t.queued_bytes(), 0u);
  std::string got;
  RunUntil([&] {
    got += ReadOut();
    return t.queued_bytes() == 0 && std::count(got.begin(), got.end(), '\n') == 20;
  });
  got += ReadOut();
  ASSERT_EQ(std::count(got.begin(), got.end(), '\n'), 20);
  size_t pos = 0;
  for (int i = 0; i < 20; ++i) {
    const size_t nl = got.find('\n', pos);
    EXPECT_EQ(json::parse(got.substr(pos, nl - pos))["i"], i);
    pos = nl + 1;
  }
}

TEST_F(TransportTest, ClientGoneIsEpipeNotSigpipe) {
  StdioTransport t(*loop_, in_read_.get(), out_write_.get());
  ASSERT_TRUE(t.Start(Callbacks()).ok());
  out_read_.reset();
  t.Send(json{{"hello", 1}});
  EXPECT_EQ(closed_, 1);
  t.Send(json{{"again", 1}});  // dropped quietly
  EXPECT_EQ(closed_, 1);
}

TEST_F(TransportTest, RegularFileInput) {
  char path[] = "/tmp/mcpx-transport-XXXXXX";
  UniqueFd file(mkstemp(path));
  ASSERT_TRUE(file.valid());
  unlink(path);
  const std::string data = "{\"a\":1}\n{\"b\":2}";
  ASSERT_EQ(write(file.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  lseek(file.get(), 0, SEEK_SET);
  StdioTransport t(*loop_, file.get(), out_write_.get());
  ASSERT_TRUE(t.Start(Callbacks()).ok());
  RunUntil([&] { return closed_ > 0; });
  EXPECT_EQ(lines_, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  EXPECT_EQ(closed_, 1);
}

TEST_F(TransportTest, RestoresBlockingFlagsOnDestruction) {
  const int before = fcntl(in_read_.get(), F_GETFL);
  {
    StdioTransport t(*loop_, in_read_.get(), out_write_.get());
    ASSERT_TRUE(t.Start(Callbacks()).ok());
    EXPECT_TRUE(fcntl(in_read_.get(), F_GETFL) & O_NONBLOCK);
  }
  EXPECT_EQ(fcntl(in_read_.get(), F_GETFL), before);
}

}  // namespace
}  // namespace mcpx::mcp

namespace mcpx::mcp {
namespace {

// A client that sends but never reads: past the high mark, input stops being read (memory stays
// bounded); once the client reads, input resumes.
TEST_F(TransportTest, PausesInputWhileTheClientDoesNotRead) {
  StdioTransport t(*loop_, in_read_.get(), out_write_.get());
  ASSERT_TRUE(t.Start(Callbacks()).ok());
  const json big = {{"blob", std::string(1 << 20, 'x')}};
  for (int i = 0; i < 70; ++i) t.Send(big);  // ~70 MiB queued: the pipe holds 64 KiB
  ASSERT_GT(t.queued_bytes(), size_t{64} << 20);
  Write("{\"after\":1}\n");
  for (int i = 0; i < 10; ++i) loop_->RunOnce(milliseconds(10));
  EXPECT_TRUE(lines_.empty()) << "input was read although the client is not reading";
  // The client reads everything: the queue drains, input resumes.
  RunUntil([&] {
    ReadOut();
    return !lines_.empty();
  });
  EXPECT_EQ(lines_, std::vector<std::string>{"{\"after\":1}"});
}

}  // namespace
}  // namespace mcpx::mcp
