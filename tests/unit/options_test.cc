// Command-line counts (--warm, --tools-page-size): digits only, within their range, errors that
// name the flag and the range. The package-source flags fill an IndexConfig (checked later by
// ValidateIndexConfig), in both "--flag VALUE" and "--flag=VALUE" forms.
#include "cli/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace mcpx::cli {
namespace {

Result<Options> Parse(const std::vector<std::string>& args) {
  std::string program = "mcp-executor";
  std::vector<std::string> copy = args;
  std::vector<char*> argv = {program.data()};
  for (auto& a : copy) argv.push_back(a.data());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

TEST(OptionsTest, CountsInRangeAreTaken) {
  auto o = Parse({"serve", "--warm", "0", "--tools-page-size", "9999"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->warm_kernels, 0u);
  EXPECT_EQ(o->tools_page_size, 9999u);
  o = Parse({"--warm", "99", "--tools-page-size", "1"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->warm_kernels, 99u);
  EXPECT_EQ(o->tools_page_size, 1u);
}

TEST(OptionsTest, CountsOutOfRangeOrNotDigitsAreRefusedByName) {
  for (const char* v : {"100", "099", "-1", "x", "", "1e1"}) {
    auto o = Parse({"--warm", v});
    ASSERT_FALSE(o.ok()) << v;
    EXPECT_EQ(o.status().message(), "--warm needs a number of kernels from 0 to 99") << v;
  }
  for (const char* v : {"0", "10000", "00001", "+5"}) {
    auto o = Parse({"--tools-page-size", v});
    ASSERT_FALSE(o.ok()) << v;
    EXPECT_EQ(o.status().message(), "--tools-page-size needs a number of tools from 1 to 9999")
        << v;
  }
}

TEST(OptionsTest, IndexFlagsFillTheIndexConfig) {
  auto o = Parse({"serve", "--index-url", "http://127.0.0.1:8080/simple", "--extra-index-url",
                  "https://a.example/simple", "--extra-index-url=https://b.example/simple?x=1",
                  "--allow-host", "files.example", "--allow-host=[::1]:9000", "--find-links",
                  "/srv/wheels", "--find-links=/srv/more/../other"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->command, "serve");
  EXPECT_EQ(o->index.index_url, "http://127.0.0.1:8080/simple");
  EXPECT_EQ(o->index.extra_index_urls,
            (std::vector<std::string>{"https://a.example/simple", "https://b.example/simple?x=1"}));
  EXPECT_EQ(o->index.allow_hosts, (std::vector<std::string>{"files.example", "[::1]:9000"}));
  EXPECT_EQ(o->index.find_links, (std::vector<std::string>{"/srv/wheels", "/srv/other"}));
  EXPECT_FALSE(o->index.no_index);

  o = Parse({"--index-url=https://pypi.org/simple"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->index.index_url, "https://pypi.org/simple");
}

TEST(OptionsTest, DefaultsLeaveTheIndexConfigEmpty) {
  auto o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_TRUE(o->index.index_url.empty());
  EXPECT_TRUE(o->index.extra_index_urls.empty());
  EXPECT_TRUE(o->index.find_links.empty());
  EXPECT_TRUE(o->index.allow_hosts.empty());
  EXPECT_FALSE(o->index.no_index);
}

TEST(OptionsTest, FindLinksIsMadeAbsolute) {
  auto o = Parse({"--find-links", "wheels", "--find-links=./a/../b/"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  const std::string cwd = std::filesystem::current_path().string();
  ASSERT_EQ(o->index.find_links.size(), 2u);
  EXPECT_EQ(o->index.find_links[0], cwd + "/wheels");
  EXPECT_EQ(o->index.find_links[1], cwd + "/b");
}

TEST(OptionsTest, NoIndexIsASwitch) {
  auto o = Parse({"serve", "--no-index", "--find-links", "/srv/wheels"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_TRUE(o->index.no_index);
  o = Parse({"--no-index=1"});
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().message(), "option --no-index takes no value");
}

TEST(OptionsTest, IndexFlagsNeedAValue) {
  for (const char* flag : {"--index-url", "--extra-index-url", "--find-links", "--allow-host"}) {
    auto o = Parse({flag});
    ASSERT_FALSE(o.ok()) << flag;
    EXPECT_EQ(o.status().message(), std::string(flag) + " needs a value");
    // An empty value would mean "the default" (PyPI) for --index-url; refused for all of them.
    o = Parse({std::string(flag) + "="});
    ASSERT_FALSE(o.ok()) << flag;
    EXPECT_EQ(o.status().message(), std::string(flag) + " needs a value");
    o = Parse({flag, ""});
    ASSERT_FALSE(o.ok()) << flag;
    EXPECT_EQ(o.status().message(), std::string(flag) + " needs a value");
  }
}

}  // namespace
}  // namespace mcpx::cli
