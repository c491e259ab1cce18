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
      EXPECT_EQ((**m)["id"], got);
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

TEST(FrameCodecTest, NonObjectIsAnError) {
  FrameDecoder d;
  d.Feed(std::string("\0\0\0\x03[1]", 7));
  EXPECT_FALSE(d.Next().ok());
}

TEST(FrameCodecTest, InvalidUtf8IsReplacedOnEncode) {
  const std::string wire = EncodeFrame({{"s", std::string("\xff")}});
  FrameDecoder d;
  d.Feed(wire);
  auto m = d.Next();
  ASSERT_TRUE(m.ok() && m->has_value());
}

}  // namespace
}  // namespace mcpx::session
