#include "session/output_buffer.h"

#include <gtest/gtest.h>

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

TEST(OutputBufferTest, SmallOutputIsKeptWhole) {
  std::string spilled;
  OutputBuffer b(100, 1000, ToString(&spilled));
  b.Append("hello ");
  b.Append("world\n");
  EXPECT_FALSE(b.truncated());
  EXPECT_EQ(b.Text("x"), "hello world\n");
  EXPECT_TRUE(spilled.empty());
}

TEST(OutputBufferTest, LargeOutputKeepsHeadAndTailAndSpillsEverything) {
  std::string spilled, all;
  OutputBuffer b(100, 1 << 20, ToString(&spilled));
  for (int i = 0; i < 1000; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    all += line;
    b.Append(line);
  }
  EXPECT_TRUE(b.truncated());
  EXPECT_EQ(spilled, all);
  EXPECT_TRUE(b.spill_complete());
  const std::string text = b.Text(".mcp-executor/outputs/x.txt");
  EXPECT_EQ(text.rfind("line 0\n", 0), 0u);
  EXPECT_NE(text.find("line 999\n"), std::string::npos);
  EXPECT_NE(text.find("full output saved to .mcp-executor/outputs/x.txt"), std::string::npos);
  EXPECT_LT(text.size(), 300u);
}

TEST(OutputBufferTest, OneHugeAppendSpillsInOrder) {
  std::string spilled;
  OutputBuffer b(10, 1 << 20, ToString(&spilled));
  b.Append("abc");
  b.Append(std::string(50, 'x') + "END");
  EXPECT_EQ(spilled, "abc" + std::string(50, 'x') + "END");
  EXPECT_NE(b.Text("f").find("END"), std::string::npos);
}

TEST(OutputBufferTest, SpillCapStopsWritingAndSaysSo) {
  std::string spilled;
  OutputBuffer b(10, 40, ToString(&spilled));
  b.Append(std::string(100, 'y'));
  EXPECT_EQ(spilled.size(), 40u);
  EXPECT_FALSE(b.spill_complete());
  EXPECT_NE(b.Text("f").find("discarded"), std::string::npos);
}

TEST(OutputBufferTest, SpillFailureIsReported) {
  OutputBuffer b(10, 40, []() -> Result<std::function<Status(std::string_view)>> {
    return PermissionDenied("cannot create f");
  });
  b.Append(std::string(100, 'z'));
  EXPECT_NE(b.Text("f").find("not saved: cannot create f"), std::string::npos);
}

TEST(OutputBufferTest, MemoryStaysBounded) {
  OutputBuffer b(1000, 0, nullptr);
  for (int i = 0; i < 100000; ++i) b.Append(std::string(100, 'q'));
  EXPECT_LT(b.Text("").size(), 2000u);
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
  const std::string text = b.Text("");
  // Every euro sign in the output is whole.
  const auto marker = text.find("\n[...");
  ASSERT_NE(marker, std::string::npos);
  EXPECT_EQ(marker % 3, 0u);
}

}  // namespace
}  // namespace mcpx::session
