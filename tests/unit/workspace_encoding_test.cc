// The pure, lexical parts of the workspace: path cleaning, base64, UTF-8, URIs, sniffing.
#include <gtest/gtest.h>

#include <string>

#include "workspace/content.h"
#include "workspace/encoding.h"
#include "workspace/path.h"

namespace mcpx::workspace {
namespace {

TEST(CleanPath, AcceptsRelativeAndSandboxPaths) {
  const std::pair<std::string, std::string> cases[] = {
      {".", "."},
      {"./", "."},
      {"a", "a"},
      {"./a//b/", "a/b"},
      {"a/./b", "a/b"},
      {"a/../b", "b"},
      {"sub/../a.txt", "a.txt"},
      {"/workspace", "."},
      {"/workspace/", "."},
      {"/workspace/x/y", "x/y"},
      {"/host/ws/data.csv", "data.csv"},
      {"with space/ünïcödé\nnewline", "with space/ünïcödé\nnewline"},
  };
  for (const auto& [in, want] : cases) {
    auto got = CleanPath(in, "/host/ws");
    ASSERT_TRUE(got.ok()) << in << ": " << got.status().ToString();
    EXPECT_EQ(*got, want) << in;
  }
}

TEST(CleanPath, RefusesEscapes) {
  const std::string cases[] = {
      "..",
      "../x",
      "a/../../x",
      "./../x",
      "/workspace/../etc",
      "/workspace/../etc/passwd",
      "/etc/passwd",
      "/",
      "/workspacefoo/x",  // prefix must end at a component boundary
      "/host/wsx/a",
      std::string("a\0b", 3),
      "",
      std::string(300, 'n'),
  };
  for (const auto& in : cases) {
    auto got = CleanPath(in, "/host/ws");
    EXPECT_FALSE(got.ok()) << "accepted '" << in << "' as '" << (got.ok() ? *got : "") << "'";
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), Code::kInvalidArgument) << in;
    }
  }
  EXPECT_NE(CleanPath("a/../../x").status().message().find("escapes the workspace"),
            std::string::npos);
  EXPECT_NE(CleanPath(std::string("a\0b", 3)).status().message().find("NUL"), std::string::npos);
  EXPECT_NE(CleanPath("/etc/passwd").status().message().find("/workspace/"), std::string::npos);
}

TEST(Base64, RoundTripsAllLengths) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37 + 11));
    auto back = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(*Base64Decode("aGVs\nbG8="), "hello");  // wrapped input
  EXPECT_EQ(*Base64Decode("aGVsbG8"), "hello");     // padding optional
  EXPECT_EQ(*Base64Decode(""), "");
}

TEST(Base64, ErrorsNamePositionAndCharacter) {
  auto bad = Base64Decode("aGVs#bG8=");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'#' at position 4"), std::string::npos)
      << bad.status().message();

  auto urlsafe = Base64Decode("ab-_");
  ASSERT_FALSE(urlsafe.ok());
  EXPECT_NE(urlsafe.status().message().find("URL-safe"), std::string::npos);

  auto after_pad = Base64Decode("aGU=bG8=");
  ASSERT_FALSE(after_pad.ok());
  EXPECT_NE(after_pad.status().message().find("after padding"), std::string::npos);

  EXPECT_FALSE(Base64Decode("aGVsb").ok());  // 5 symbols: a dangling 6 bits
  EXPECT_FALSE(Base64Decode(std::string("aG\0s", 4)).ok());
}

TEST(Utf8, ValidatesStrictly) {
  EXPECT_TRUE(IsUtf8("plain ascii"));
  EXPECT_TRUE(IsUtf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("ab\xe2\x82"));  // cut
  EXPECT_EQ(Utf8IncompleteTail("ab\xe2\x82"), 2u);
  EXPECT_EQ(Utf8IncompleteTail("ab\xf0"), 1u);
  EXPECT_EQ(Utf8IncompleteTail("ab\xff"), 0u);  // invalid, not incomplete
  EXPECT_EQ(Utf8IncompleteTail("abc"), 0u);
}

TEST(Content, TextAndImages) {
  EXPECT_TRUE(LooksLikeText("a,b\n1,2\n"));
  EXPECT_TRUE(LooksLikeText("caf\xc3"));  // a range cut inside a character is still text
  EXPECT_FALSE(LooksLikeText(std::string("a\0b", 3)));
  EXPECT_FALSE(LooksLikeText("\xff\xfe"));
  EXPECT_EQ(SniffImageMime("\x89PNG\r\n\x1a\nrest").value_or(""), "image/png");
  EXPECT_EQ(SniffImageMime("\xff\xd8\xff\xe0").value_or(""), "image/jpeg");
  EXPECT_EQ(SniffImageMime("GIF89a...").value_or(""), "image/gif");
  using namespace std::string_view_literals;
  EXPECT_EQ(SniffImageMime("RIFF\x10\0\0\0WEBPVP8 "sv).value_or(""), "image/webp");
  EXPECT_FALSE(SniffImageMime("RIFF\x10\0\0\0WAVEfmt "sv).has_value());
  EXPECT_FALSE(SniffImageMime("not an image").has_value());
  EXPECT_EQ(MimeFromName("dir/Data.CSV", true), "text/csv");
  EXPECT_EQ(MimeFromName("noext", false), "application/octet-stream");
  EXPECT_EQ(MimeFromName(".bashrc", true), "text/plain");
}

TEST(Uri, PercentEncodingRoundTrips) {
  const std::string rel = "dir with space/ü#?%.txt";
  const std::string enc = PercentEncodePath(rel);
  EXPECT_EQ(enc, "dir%20with%20space/%C3%BC%23%3F%25.txt");
  EXPECT_EQ(*PercentDecode(enc), rel);
  EXPECT_FALSE(PercentDecode("a%2").ok());
  EXPECT_FALSE(PercentDecode("a%zz").ok());
  EXPECT_FALSE(PercentDecode("a%00b").ok());
}

TEST(Time, IsoUtc) {
  EXPECT_EQ(IsoTimeUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(IsoTimeUtc(1700000000), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace mcpx::workspace
