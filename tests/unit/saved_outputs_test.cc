// The caps on `.mcp-executor/outputs/`: per session and in total, oldest first, never the files
// of the call that is being counted, a session's files gone with it, and what an earlier server
// left there counted too.
#include "session/saved_outputs.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <utime.h>

#include <filesystem>
#include <fstream>

namespace mcpx::session {
namespace {

namespace fs = std::filesystem;
constexpr const char* kDir = ".mcp-executor/outputs";

class SavedOutputFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mcpx-saved-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / kDir);
    auto ws = workspace::Workspace::Open(root_.string());
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(ws).value();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // Writes `kib` KiB as kDir/name; returns the workspace-relative path.
  std::string Write(const std::string& name, size_t kib) {
    const std::string rel = std::string(kDir) + "/" + name;
    std::ofstream(root_ / rel) << std::string(kib << 10, 'x');
    return rel;
  }
  bool Exists(const std::string& rel) const { return fs::exists(root_ / rel); }

  fs::path root_;
  std::shared_ptr<workspace::Workspace> ws_;
};

TEST_F(SavedOutputFilesTest, TheOldestFilesOfASessionGoPastItsCap) {
  SavedOutputFiles saved(ws_, kDir, 100 << 10, 1 << 20);
  const std::string a = Write("a", 40), b = Write("b", 40), c = Write("c", 40);
  EXPECT_TRUE(saved.Add("s", {a}).empty());
  EXPECT_TRUE(saved.Add("s", {b}).empty());
  EXPECT_EQ(saved.Add("s", {c}), std::vector<std::string>{a});  // 120 KiB > 100 KiB
  EXPECT_FALSE(Exists(a));
  EXPECT_TRUE(Exists(b) && Exists(c));
  EXPECT_EQ(saved.total_bytes(), 80u << 10);
}

TEST_F(SavedOutputFilesTest, TheFilesOfTheCallAreKeptEvenPastTheCap) {
  SavedOutputFiles saved(ws_, kDir, 10 << 10, 1 << 20);
  const std::string old = Write("old", 5), big = Write("big", 50);
  EXPECT_TRUE(saved.Add("s", {old}).empty());
  EXPECT_EQ(saved.Add("s", {big}), std::vector<std::string>{old});
  EXPECT_TRUE(Exists(big));
}

TEST_F(SavedOutputFilesTest, TheTotalCapTakesTheOldestOfAnySession) {
  SavedOutputFiles saved(ws_, kDir, 1 << 20, 100 << 10);
  const std::string a = Write("a", 60), b = Write("b", 60);
  EXPECT_TRUE(saved.Add("one", {a}).empty());
  EXPECT_EQ(saved.Add("two", {b}), std::vector<std::string>{a});
  EXPECT_FALSE(Exists(a));
}

TEST_F(SavedOutputFilesTest, ForgetRemovesOnlyThatSessionsFiles) {
  SavedOutputFiles saved(ws_, kDir, 1 << 20, 1 << 20);
  const std::string a = Write("a", 1), b = Write("b", 1);
  saved.Add("one", {a});
  saved.Add("two", {b});
  saved.Forget("one");
  EXPECT_FALSE(Exists(a));
  EXPECT_TRUE(Exists(b));
  EXPECT_EQ(saved.files(), 1u);
}

TEST_F(SavedOutputFilesTest, ARewrittenFileIsCountedOnce) {
  SavedOutputFiles saved(ws_, kDir, 1 << 20, 1 << 20);
  const std::string a = Write("a", 10);
  saved.Add("s", {a});
  saved.Add("s", {a});
  EXPECT_EQ(saved.files(), 1u);
  EXPECT_EQ(saved.total_bytes(), 10u << 10);
}

TEST_F(SavedOutputFilesTest, FilesOfAnEarlierServerCountOldestFirst) {
  const std::string older = Write("older", 60), newer = Write("newer", 60);
  struct utimbuf t {
    1000, 1000
  };
  ASSERT_EQ(::utime((root_ / older).c_str(), &t), 0);
  SavedOutputFiles saved(ws_, kDir, 1 << 20, 100 << 10);
  saved.Adopt();  // 120 KiB > 100 KiB: the older goes at once
  EXPECT_FALSE(Exists(older));
  EXPECT_TRUE(Exists(newer));
  const std::string mine = Write("mine", 60);
  EXPECT_EQ(saved.Add("s", {mine}), std::vector<std::string>{newer});
}

}  // namespace
}  // namespace mcpx::session
