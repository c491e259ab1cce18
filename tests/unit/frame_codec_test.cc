#include "session/frame_codec.h"

#include <gtest/gtest.h>

namespace mcpx::session {
namespace {

TEST(FrameCodecTest, RoundTripByteByByte) {
  const std::string wire = EncodeFrame({{"id", 1}, {"type", "result"}}) + EncodeFrame({{"id", 2}});
  FrameDecoder d;
  int got = 0;
  for (char c : wire) {
    d.Feed(std::string_view(&c, 1));
    auto m = d.Next();
    ASSERT_TRUE(m.ok());
    if (m->has_value()) {
      ++got;
      EXPECT_EQ(nlohmann::json::parse(**m)["id"], got);
    }
  }
  EXPECT_EQ(got, 2);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameCodecTest, OversizedFrameIsAnError) {
  FrameDecoder d;
  d.Feed(std::string("\x7f\xff\xff\xff", 4));
  auto m = d.Next();
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("limit"), std::string::npos);
}

TEST(FrameCodecTest, TheLimitIsThePolicysAndComesFromTheHeader) {
  FrameDecoder d(1000);
  d.Feed(std::string("\0\0\x03\xe9", 4));  // 1001 bytes announced, none sent
  auto m = d.Next();
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("1001 bytes (limit 1000"), std::string::npos);
}

TEST(FrameCodecTest, InvalidUtf8IsReplacedOnEncode) {
  const std::string wire = EncodeFrame({{"s", std::string("\xff")}});
  FrameDecoder d;
  d.Feed(wire);
  auto m = d.Next();
  ASSERT_TRUE(m.ok() && m->has_value());
}

TEST(FrameCodecTest, ManySmallFramesFedInOneGoAllComeOut) {
  std::string wire;
  for (int i = 0; i < 100000; ++i) wire += EncodeFrame({{"type", "pong"}});
  FrameDecoder d;
  d.Feed(wire);
  int got = 0;
  for (;;) {
    auto m = d.Next();
    ASSERT_TRUE(m.ok());
    if (!m->has_value()) break;
    ++got;
  }
  EXPECT_EQ(got, 100000);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameCodecTest, PartialFrameSurvivesCompaction) {
  const std::string a = EncodeFrame({{"n", 1}});
  const std::string b = EncodeFrame({{"n", 2}, {"pad", std::string(100, 'x')}});
  FrameDecoder d;
  d.Feed(a + b.substr(0, 10));
  auto m = d.Next();
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_FALSE(d.Next()->has_value());
  d.Feed(b.substr(10));  // compacts: the consumed first frame is the larger part
  m = d.Next();
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ(nlohmann::json::parse(**m)["n"], 2);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameCodecTest, TooDeepIsAnErrorBeforeParsing) {
  const std::string payload = "{\"x\":" + std::string(20, '[') + std::string(20, ']') + "}";
  EXPECT_FALSE(CheckFrameShape(payload).ok());
  EXPECT_TRUE(CheckFrameShape("{\"x\":[[{\"a\":1}]]}").ok());
  // Brackets inside strings, escaped quotes included, do not count.
  EXPECT_TRUE(CheckFrameShape("{\"x\":\"\\\"" + std::string(100, '[') + "\"}").ok());
}

TEST(FrameCodecTest, TooManyValuesIsAnError) {
  std::string many = "{\"x\":[";
  for (size_t i = 0; i < kMaxKernelFrameValues; ++i) many += "{},";
  many += "{}]}";
  const auto st = CheckFrameShape(many);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("values"), std::string::npos);
}

}  // namespace
}  // namespace mcpx::session
