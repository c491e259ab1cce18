// Command-line counts (--warm, --tools-page-size): digits only, within their range, errors that
// name the flag and the range.
#include "cli/options.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mcpx::cli
