#include "session/output_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace mcpx::session {
namespace {

OutputBuffer::SpillOpener ToString(std::string* sink) {
  return [sink]() -> Result<std::function<Status(std::string_view)>> {
    return std::function<Status(std::string_view)>([sink](std::string_view d) {
      sink->append(d);
      return Status::Ok();
    });
  };
}

// head + "|" + tail, or the whole text, as a reply would show the view.
std::string Shown(const OutputView& v) { return v.cut ? v.head + "|" + v.tail : v.head; }

TEST(OutputBufferTest, SmallOutputIsKeptWhole) {
  std::string spilled;
  OutputBuffer b(100, 1000, ToString(&spilled));
  b.Append("hello ");
  b.Append("world\n");
  b.Finish();
  EXPECT_FALSE(b.truncated());
  const OutputView v = b.View(100);
  EXPECT_EQ(v.head, "hello world\n");
  EXPECT_FALSE(v.cut);
  EXPECT_EQ(b.total_lines(), 1u);
  EXPECT_TRUE(spilled.empty());
}

TEST(OutputBufferTest, LargeOutputKeepsWholeLinesOfHeadAndTailAndSpillsEverything) {
  std::string spilled, all;
  OutputBuffer b(100, 1 << 20, ToString(&spilled));
  for (int i = 0; i < 1000; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    all += line;
    b.Append(line);
  }
  b.Finish();
  EXPECT_TRUE(b.truncated());
  EXPECT_EQ(spilled, all);
  EXPECT_TRUE(b.spill_complete());
  EXPECT_EQ(b.total_lines(), 1000u);
  const OutputView v = b.View(100);
  ASSERT_TRUE(v.cut);
  EXPECT_EQ(v.head.rfind("line 0\n", 0), 0u);
  EXPECT_EQ(v.head.back(), '\n');
  EXPECT_EQ(v.tail.substr(v.tail.size() - 9), "line 999\n");
  EXPECT_EQ(v.tail.rfind("line ", 0), 0u);  // starts a line
  // The cut says exactly what is missing: offset in the whole text, bytes and lines.
  EXPECT_EQ(v.cut->offset, v.head.size());
  EXPECT_EQ(all.substr(0, v.cut->offset), v.head);
  EXPECT_EQ(all.substr(v.cut->offset + v.cut->bytes), v.tail);
  const auto newlines = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  EXPECT_EQ(v.cut->lines, 1000u - newlines(v.head) - newlines(v.tail));
  EXPECT_LE(v.head.size() + v.tail.size(), 100u);
}

TEST(OutputBufferTest, ASmallerViewOfTheSameStream) {
  OutputBuffer b(1000, 1 << 20, nullptr);
  std::string all;
  for (int i = 0; i < 100; ++i) all += "row " + std::to_string(i) + "\n";
  b.Append(all);
  b.Finish();
  EXPECT_FALSE(b.truncated());  // 790 bytes: within the cap
  EXPECT_FALSE(b.View(1000).cut);
  const OutputView brief = b.View(200);
  ASSERT_TRUE(brief.cut);
  EXPECT_LE(brief.head.size() + brief.tail.size(), 200u);
  EXPECT_EQ(all.substr(0, brief.cut->offset), brief.head);
  EXPECT_EQ(all.substr(brief.cut->offset + brief.cut->bytes), brief.tail);
}

TEST(OutputBufferTest, CarriageReturnsKeepEachLinesFinalState) {
  OutputBuffer b(1000, 0, nullptr);
  for (int i = 0; i <= 100; ++i) b.Append("\rprogress " + std::to_string(i) + "%");
  b.Append("\ndone\r\n");
  b.Append("a\rb");
  b.Append("c\n");
  b.Finish();
  EXPECT_EQ(b.View(1000).head, "progress 100%\ndone\nbc\n");
  EXPECT_EQ(b.total_bytes(), 22u);
  EXPECT_EQ(b.total_lines(), 3u);
}

TEST(OutputBufferTest, ProgressMessagesShowFinishedLinesThenTheCurrentFrame) {
  OutputBuffer b(1000, 0, nullptr);
  b.Append("start\n\r10%");
  EXPECT_EQ(b.TakeFresh(100), "start\n10%");
  b.Append("\r20%");
  b.Append("\r30%");
  EXPECT_EQ(b.TakeFresh(100), "30%");
  EXPECT_EQ(b.TakeFresh(100), "");  // nothing new
  b.Append("\r100%\n");
  EXPECT_EQ(b.TakeFresh(100), "100%\n");
}

TEST(OutputBufferTest, ALineWithoutEndIsBoundedAndCutBetweenCharacters) {
  std::string spilled;
  OutputBuffer b(100, 1 << 20, ToString(&spilled));
  b.Append(std::string(200 << 10, 'x'));
  b.Finish();
  EXPECT_EQ(spilled.size(), 200u << 10);
  const OutputView v = b.View(100);
  ASSERT_TRUE(v.cut);
  EXPECT_EQ(v.head, std::string(50, 'x'));
  EXPECT_EQ(v.tail, std::string(50, 'x'));
  EXPECT_EQ(v.cut->lines, 0u);
  EXPECT_EQ(b.total_lines(), 1u);
}

TEST(OutputBufferTest, OneHugeAppendSpillsInOrder) {
  std::string spilled;
  OutputBuffer b(10, 1 << 20, ToString(&spilled));
  b.Append("abc");
  b.Append(std::string(50, 'x') + "END");
  b.Finish();
  EXPECT_EQ(spilled, "abc" + std::string(50, 'x') + "END");
  EXPECT_NE(Shown(b.View(10)).find("END"), std::string::npos);
}

TEST(OutputBufferTest, SpillCapStopsWritingAndSaysSo) {
  std::string spilled;
  OutputBuffer b(10, 40, ToString(&spilled));
  b.Append(std::string(100, 'y'));
  b.Finish();
  EXPECT_EQ(spilled.size(), 40u);
  EXPECT_FALSE(b.spill_complete());
  EXPECT_NE(b.spill_error().find("discarded"), std::string::npos);
}

TEST(OutputBufferTest, SpillFailureIsReported) {
  OutputBuffer b(10, 40, []() -> Result<std::function<Status(std::string_view)>> {
    return PermissionDenied("cannot create f");
  });
  b.Append(std::string(100, 'z'));
  b.Finish();
  EXPECT_NE(b.spill_error().find("cannot create f"), std::string::npos);
  EXPECT_EQ(b.spilled_bytes(), 0u);
}

TEST(OutputBufferTest, MemoryStaysBounded) {
  OutputBuffer b(1000, 0, nullptr);
  for (int i = 0; i < 100000; ++i) b.Append(std::string(100, 'q'));
  b.Finish();
  EXPECT_LT(Shown(b.View(1000)).size(), 2000u);
  EXPECT_LE(b.TakeFresh(1 << 20).size(), 64u << 10);
}

TEST(OutputBufferTest, CutsDoNotSplitUtf8) {
  const std::string euro = "\xE2\x82\xAC";  // 3 bytes
  EXPECT_EQ(Utf8SafePrefix(euro + euro, 4), 3u);
  EXPECT_EQ(Utf8SafeStart(euro + euro, 1), 3u);
  OutputBuffer b(20, 0, nullptr);
  std::string s;
  for (int i = 0; i < 40; ++i) s += euro;
  b.Append(s);
  b.Finish();
  const OutputView v = b.View(20);
  ASSERT_TRUE(v.cut);
  // Every euro sign in the output is whole.
  EXPECT_EQ(v.head.size() % 3, 0u);
  EXPECT_EQ(v.tail.size() % 3, 0u);
}

}  // namespace
}  // namespace mcpx::session
