// The `policy show` / `policy export` commands: what they print loads back, bad usage exits 2
// and prints nothing on stdout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "jail/policy.h"
#include "util/unique_fd.h"

namespace mcpx::jail {
namespace {

using nlohmann::json;

// Runs RunPolicy with fd 1 redirected to a file; returns {exit code, stdout}.
std::pair<int, std::string> RunPolicyCommand(std::vector<std::string> positional,
                                             const std::string& policy,
                                             const std::string& format = "") {
  cli::Options opts;
  opts.command = "policy";
  opts.positional = std::move(positional);
  opts.policy = policy;
  opts.format = format;
  opts.data_dir = MCPX_SOURCE_DIR;
  char path[] = "/tmp/mcpx-policy-out-XXXXXX";
  UniqueFd out(mkstemp(path));
  unlink(path);
  std::fflush(stdout);
  UniqueFd saved(dup(1));
  dup2(out.get(), 1);
  const int rc = cli::RunPolicy(opts);
  dup2(saved.get(), 1);
  std::string text;
  char buf[8192];
  lseek(out.get(), 0, SEEK_SET);
  for (ssize_t n; (n = read(out.get(), buf, sizeof(buf))) > 0;) {
    text.append(buf, static_cast<size_t>(n));
  }
  return {rc, text};
}

TEST(PolicyCommandTest, ExportOutputReparses) {
  auto [rc, text] = RunPolicyCommand({"export"}, "strict", "oci");
  ASSERT_EQ(rc, 0);
  auto doc = json::parse(text, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << text.substr(0, 200);
  auto p = ParseSeccompProfile(doc);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->default_errno_ret, 38);
}

TEST(PolicyCommandTest, ShowPrintsTheEffectivePolicy) {
  auto [rc, text] = RunPolicyCommand({"show"}, "default");
  ASSERT_EQ(rc, 0);
  auto doc = json::parse(text, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["name"], "default");
  EXPECT_EQ(doc["limits"]["memory_mb"], 1024);
}

TEST(PolicyCommandTest, BadUsageExitsTwoAndPrintsNothing) {
  for (const auto& [args, policy, format] :
       {std::tuple<std::vector<std::string>, std::string, std::string>{{}, "default", ""},
        {{"frobnicate"}, "default", ""},
        {{"export"}, "default", "docker"},
        {{"show"}, "nonesuch", ""},
        {{"show"}, "/nonexistent/p.json", ""}}) {
    auto [rc, text] = RunPolicyCommand(args, policy, format);
    EXPECT_EQ(rc, 2) << policy;
    EXPECT_EQ(text, "") << policy;
  }
}

}  // namespace
}  // namespace mcpx::jail
