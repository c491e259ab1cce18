#include "session/kernel_frame.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "workspace/encoding.h"

namespace mcpx::session {
namespace {

using json = nlohmann::json;

FrameLimits Limits() {
  SessionSettings l;
  return FrameLimitsFor(l);
}

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  for (size_t i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  return s;
}

// The CRC is left zero: the server reads the header, the client's decoder checks the rest.
std::string Chunk(const std::string& type, const std::string& data) {
  return Be32(static_cast<uint32_t>(data.size())) + type + data + Be32(0);
}

// A PNG header that declares width x height; the pixel data is a stub (clients decode it, we
// only read the header).
std::string Png(uint32_t width, uint32_t height) {
  const std::string ihdr = Be32(width) + Be32(height) + std::string("\x08\x06\0\0\0", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + Chunk("IHDR", ihdr) + Chunk("IDAT", "x") +
         Chunk("IEND", "");
}

std::string ResultWithImage(const std::string& b64) {
  return json{{"type", "result"},
              {"id", 3},
              {"status", "ok"},
              {"images", {{{"mime_type", "image/png"}, {"data", b64}}}}}
      .dump();
}

TEST(KernelFrameTest, ResultFieldsAreTyped) {
  auto f = ParseKernelFrame(json{{"type", "result"},
                                 {"id", 7},
                                 {"status", "ok"},
                                 {"result", "42"},
                                 {"notes", {"n1", 5, nullptr}},
                                 {"saved_images", {"/workspace/a.png"}},
                                 {"cpu_ms", 1.5}}
                                .dump(),
                            Limits());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->kind, KernelFrame::Kind::kResult);
  EXPECT_EQ(f->id, 7u);
  EXPECT_EQ(f->status, "ok");
  EXPECT_EQ(f->result, "42");
  EXPECT_EQ(f->notes, std::vector<std::string>{"n1"});
  EXPECT_EQ(f->saved_images.size(), 1u);
  EXPECT_EQ(f->cpu_ms, 1.5);
}

// imports: only identifiers of at most 100 characters, at most kMaxImportsPerFrame of them.
TEST(KernelFrameTest, ImportsAreCheckedModuleNames) {
  json names = {"numpy", "_io", "x1", "1x", "a.b", "", "a b", std::string(101, 'a'), 7};
  for (int i = 0; i < 2100; ++i) names.push_back("m" + std::to_string(i));
  auto f =
      ParseKernelFrame(json{{"type", "result"}, {"id", 1}, {"imports", names}}.dump(), Limits());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->imports.size(), kMaxImportsPerFrame);
  EXPECT_EQ(f->imports[0], "numpy");
  EXPECT_EQ(f->imports[1], "_io");
  EXPECT_EQ(f->imports[2], "x1");
  EXPECT_EQ(f->imports[3], "m0");
}

TEST(KernelFrameTest, InstallFrameCarriesARequirement) {
  auto f = ParseKernelFrame(
      json{{"type", "install"}, {"requirement", "seaborn>=0.13"}, {"upgrade", true}}.dump(),
      Limits());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->kind, KernelFrame::Kind::kInstall);
  EXPECT_EQ(f->requirement, "seaborn>=0.13");
  EXPECT_TRUE(f->upgrade);
  for (const json& bad : {json{{"type", "install"}}, json{{"type", "install"}, {"requirement", 3}},
                          json{{"type", "install"}, {"requirement", ""}},
                          json{{"type", "install"}, {"requirement", std::string(2000, 'x')}}}) {
    auto r = ParseKernelFrame(bad.dump(), Limits());
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_NE(r.status().message().find("install frame"), std::string::npos);
  }
}

TEST(KernelFrameTest, WrongTypesFallBackInsteadOfThrowing) {
  auto f = ParseKernelFrame(
      R"({"type":"result","id":"7","status":["ok"],"result":{"a":1},"error":["x"],
          "images":[5,{"data":7}],"notes":{},"cpu_ms":"lots"})",
      Limits());
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->id.has_value());
  EXPECT_EQ(f->status, "error");
  EXPECT_FALSE(f->result.has_value());
  EXPECT_FALSE(f->error.has_value());
  EXPECT_EQ(f->dropped_images, 2u);
  EXPECT_FALSE(f->cpu_ms.has_value());
}

TEST(KernelFrameTest, TypeMustBeAString) {
  for (const char* bad : {R"({"type":5})", "null", R"(["ready"])", "{}", R"({"type":null})", "12",
                          R"("result")", "{", ""}) {
    EXPECT_FALSE(ParseKernelFrame(bad, Limits()).ok()) << bad;
  }
}

TEST(KernelFrameTest, UnknownTypesAreOther) {
  auto f = ParseKernelFrame(R"({"type":"pong","id":1})", Limits());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, KernelFrame::Kind::kOther);
}

TEST(KernelFrameTest, StringsAreCapped) {
  auto f = ParseKernelFrame(json{{"type", "result"},
                                 {"status", "error"},
                                 {"result", std::string(1 << 20, 'r')},
                                 {"error",
                                  {{"type", std::string(10000, 't')},
                                   {"message", std::string(1 << 20, 'm')},
                                   {"traceback", std::string(1 << 20, 'b')}}}}
                                .dump(),
                            Limits());
  ASSERT_TRUE(f.ok());
  EXPECT_LT(f->result->size(), kMaxResultChars + 64);
  EXPECT_LT(f->error->type.size(), 256u + 64);
  EXPECT_LT(f->error->message.size(), kMaxMessageChars + 64);
  EXPECT_LT(f->error->traceback.size(), kMaxTracebackChars + 64);
}

TEST(KernelFrameTest, PreloadFailuresAreBounded) {
  json failures = json::array();
  for (int i = 0; i < 100; ++i) {
    failures.push_back({{"module", std::string(1000, 'm')}, {"error", std::string(100000, 'e')}});
  }
  auto f =
      ParseKernelFrame(json{{"type", "ready"}, {"failed_preloads", failures}}.dump(), Limits());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, KernelFrame::Kind::kReady);
  ASSERT_EQ(f->failed_preloads.size(), kMaxPreloadFailures);
  size_t total = 0;
  for (const auto& p : f->failed_preloads) total += p.module.size() + p.error.size();
  EXPECT_LT(total, 32u << 10);
}

TEST(KernelFrameTest, AnHonestImageIsKeptWithItsHeaderSize) {
  auto f = ParseKernelFrame(ResultWithImage(workspace::Base64Encode(Png(640, 480))), Limits());
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->images.size(), 1u);
  EXPECT_EQ(f->images[0].width, 640u);
  EXPECT_EQ(f->images[0].height, 480u);
  EXPECT_EQ(f->dropped_images, 0u);
}

TEST(KernelFrameTest, ImagesAreCheckedByPixelsNotOnlyBytes) {
  for (auto [w, h] :
       {std::pair<uint32_t, uint32_t>{20000, 20000}, {4097, 4097}, {1, 100000}, {0, 10}, {10, 0}}) {
    auto f = ParseKernelFrame(ResultWithImage(workspace::Base64Encode(Png(w, h))), Limits());
    ASSERT_TRUE(f.ok());
    EXPECT_TRUE(f->images.empty()) << w << "x" << h;
    EXPECT_EQ(f->dropped_images, 1u);
  }
}

TEST(KernelFrameTest, ImagesMustBeCanonicalPngBase64) {
  const std::string png = workspace::Base64Encode(Png(10, 10));
  for (const std::string& bad :
       {std::string("PHN2Zz4="), png.substr(0, 8) + "\n" + png.substr(8), std::string("!!!"),
        workspace::Base64Encode("\x89PNG\r\n\x1a\n" + std::string(40, '\0'))}) {
    auto f = ParseKernelFrame(ResultWithImage(bad), Limits());
    ASSERT_TRUE(f.ok());
    EXPECT_TRUE(f->images.empty()) << bad;
  }
}

TEST(KernelFrameTest, FrameLimitFollowsThePolicysImages) {
  SessionSettings small;
  small.max_images = 1;
  small.image_bytes = 64 << 10;
  SessionSettings big;
  big.max_images = 8;
  big.image_bytes = 1 << 20;
  EXPECT_LT(FrameLimitsFor(small).max_frame_bytes, FrameLimitsFor(big).max_frame_bytes);
  EXPECT_GE(FrameLimitsFor(big).max_frame_bytes, 8u * ((1u << 20) * 4 / 3));
  EXPECT_LE(FrameLimitsFor(big).max_frame_bytes, 32u << 20);
}

}  // namespace
}  // namespace mcpx::session
