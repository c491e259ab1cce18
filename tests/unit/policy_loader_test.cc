// The jail's part of policy loading and the OCI seccomp profile: the jail reads its fields and
// hands on the rest, every profile error names its JSON path, an exported profile loads back to
// the same program. (server_policy_test: the whole policy file; policy_command_test: the
// `policy show` / `policy export` commands.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "jail/policy.h"
#include "jail/seccomp_compiler.h"
#include "policy_docs.h"

namespace mcpx::jail {
namespace {

using nlohmann::json;

using policy_docs::kPolicies;
using policy_docs::kSeccompDir;
using policy_docs::Minimal;

std::string ProfileError(const json& doc) {
  auto p = ParseSeccompProfile(doc);
  return p.ok() ? "" : p.status().message();
}

TEST(PolicyLoadTest, MissingPolicyListsTheAvailableOnes) {
  auto p = LoadPolicy("nonesuch", kPolicies);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kNotFound);
  EXPECT_NE(p.status().message().find("default"), std::string::npos) << p.status().message();
  EXPECT_FALSE(LoadPolicy("../etc/passwd", kPolicies).ok());
}

// The jail reads its own fields and hands every other key on, unread and unjudged: the session
// layer reads those (tests/unit/server_policy_test.cc has the whole file's validation).
TEST(PolicyLoadTest, TheJailReadsItsFieldsAndHandsOnTheRest) {
  json doc = Minimal();
  doc["limits"] = {{"memory_mb", 128}, {"output_kb", 10}, {"memroy_mb", 1}};
  doc["preload"] = json::array({"numpy"});
  auto p = ParsePolicy(doc, kSeccompDir, "t.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->limits.memory_bytes, 128ull << 20);
  EXPECT_EQ((*p)->others,
            (json{{"limits", {{"output_kb", 10}, {"memroy_mb", 1}}}, {"preload", {"numpy"}}}));
  EXPECT_EQ(PolicyToJson(**p)["limits"].count("output_kb"), 0u);
  // Its own fields are still judged here.
  doc["limits"]["memory_mb"] = 16;
  EXPECT_EQ(ParsePolicy(doc, kSeccompDir, "t.json").status().message().substr(0, 41),
            "limits.memory_mb: must be between 32 and ");
  auto def = LoadPolicy("default", kPolicies);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  EXPECT_TRUE((*def)->others.contains("preload"));
  EXPECT_EQ((*def)->limits.memory_bytes, 1024ull << 20);
}

TEST(SeccompProfileValidationTest, ErrorsNameTheJsonPath) {
  struct Case {
    const char* doc;
    std::string want;
  };
  const Case cases[] = {
      {R"({})", "defaultAction: required"},
      {R"({"defaultAction": "SCMP_ACT_NOTIFY"})", "defaultAction: SCMP_ACT_NOTIFY needs"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})",
       "defaultErrnoRet: only meaningful with SCMP_ACT_ERRNO"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000})",
       "defaultErrnoRet: must be between 0 and 4095"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]})",
       "architectures[1]: unknown architecture 'SCMP_ARCH_Z80'"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["x86_64"]})",
       "architectures[0]: unknown architecture 'x86_64'"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "archMap": []})", "archMap: Docker-only field"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})",
       "flags[0]: refused"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["BOGUS"]})", "flags[0]: unsupported flag"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}})", "syscalls: must be an array"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]})",
       "syscalls[0].names: must list at least one syscall"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["write", "opne"], "action": "SCMP_ACT_ALLOW"}]})",
       "syscalls[3].names[1]: unknown syscall 'opne'"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]})",
       "syscalls[0].action: required"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]})",
       "syscalls[0].action: unknown action 'ALLOW'"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]})",
       "syscalls[0].errnoRet: only meaningful with SCMP_ACT_ERRNO"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "x"}]})",
       "syscalls[0].comment: unknown field"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
       "syscalls[0].args[0].index: must be between 0 and 5"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]})",
       "syscalls[0].args[0].value: must be an integer >= 0, got -1"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED"}]}]})",
       "syscalls[0].args[0].op: unknown operator 'SCMP_CMP_MASKED'"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]})",
       "syscalls[0].args[0].value: required"},
      // Exists on x86_64 only: fine when x86_64 is listed, an error when only aarch64 is.
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_AARCH64"],
          "syscalls": [{"names": ["open"], "action": "SCMP_ACT_ALLOW"}]})",
       "syscalls[0].names[0]: unknown syscall 'open'"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64"],
          "syscalls": [{"names": ["open"], "action": "SCMP_ACT_ALLOW"}]})",
       ""},
  };
  for (const Case& c : cases) {
    const std::string got = ProfileError(json::parse(c.doc));
    EXPECT_EQ(got.substr(0, c.want.size()), c.want) << c.doc;
    if (c.want.empty()) {
      EXPECT_EQ(got, "");
    }
  }
}

TEST(SeccompProfileValidationTest, AbsentErrnoRetMeansEpermLikeOci) {
  auto p = ParseSeccompProfile(json::parse(R"({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]})"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->default_errno_ret, EPERM);
  EXPECT_EQ(p->syscalls[0].errno_ret, EPERM);
}

TEST(ReadJsonFileTest, DuplicateKeysAndSyntaxErrorsAreReported) {
  char path[] = "/tmp/mcpx-policy-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  { std::ofstream(path) << R"({"name": "a", "limits": {"pids": 5, "pids": 6}})"; }
  auto dup = ReadJsonFile(path);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate key \"pids\""), std::string::npos)
      << dup.status().message();
  { std::ofstream(path) << R"({"name": "a",})"; }
  auto bad = ReadJsonFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("invalid JSON"), std::string::npos);
  EXPECT_NE(bad.status().message().find(path), std::string::npos);
  unlink(path);
  EXPECT_EQ(ReadJsonFile("/nonexistent/x.json").status().err(), ENOENT);
}

// ---------------------------------------------------------------------------------------------
// What `policy show` and `policy export` print loads back to the same thing.

// ---------------------------------------------------------------------------------------------
// What `policy export` prints loads back to the same program.

TEST(PolicyRoundTripTest, ExportIsPureOciAndReparses) {
  for (const char* name : {"default", "strict"}) {
    auto p = LoadPolicy(name, kPolicies);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    const json oci = SeccompToOci((*p)->seccomp);
    for (const char* docker_only : {"archMap", "includes", "excludes", "comment"}) {
      EXPECT_FALSE(oci.contains(docker_only)) << docker_only;
    }
    for (const auto& rule : oci["syscalls"]) {
      if (rule["action"] == "SCMP_ACT_ERRNO") {
        EXPECT_TRUE(rule.contains("errnoRet"));
      }
    }
    auto reparsed = ParseSeccompProfile(oci);
    ASSERT_TRUE(reparsed.ok()) << reparsed.status().ToString();
    EXPECT_EQ(SeccompToOci(*reparsed), oci);
    // Same program, bit for bit.
    auto a = CompileSeccompProfile((*p)->seccomp);
    auto b = CompileSeccompProfile(*reparsed);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->insns.size(), b->insns.size());
    EXPECT_EQ(0,
              std::memcmp(a->insns.data(), b->insns.data(), a->insns.size() * sizeof(sock_filter)));
  }
}

// The loaded policy carries its compiled filters in install order: built-in, then the profile.
TEST(PolicyLoaderTest, LoadedPolicyOwnsItsCompiledFilters) {
  auto p = LoadPolicy("default", kPolicies);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const std::vector<SeccompProgram>& programs = (*p)->seccomp_programs;
  ASSERT_EQ(programs.size(), 2u);
  auto builtin = CompileBuiltinFilter();
  auto profile = CompileSeccompProfile((*p)->seccomp);
  ASSERT_TRUE(builtin.ok() && profile.ok());
  for (const auto& [loaded, fresh] :
       {std::pair{&programs[0], &*builtin}, std::pair{&programs[1], &*profile}}) {
    ASSERT_EQ(loaded->insns.size(), fresh->insns.size());
    EXPECT_EQ(loaded->flags, fresh->flags);
    EXPECT_EQ(0, std::memcmp(loaded->insns.data(), fresh->insns.data(),
                             loaded->insns.size() * sizeof(sock_filter)));
  }
}

}  // namespace
}  // namespace mcpx::jail
