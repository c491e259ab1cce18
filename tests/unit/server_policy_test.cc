// The whole policy file as the server loads it: the shipped files load, every validation error
// names the JSON path of the bad value (the jail's fields and the session's alike, and a key
// neither knows), and what `policy show` prints loads back.
#include "session/server_policy.h"

#include <gtest/gtest.h>

#include <string>

#include "policy_docs.h"

namespace mcpx::session {
namespace {

using nlohmann::json;

using policy_docs::kPolicies;
using policy_docs::kSeccompDir;
using policy_docs::Minimal;

// Applies a JSON pointer assignment ("/limits/memory_mb" = -1) to a minimal policy and returns
// the error message ("" when it loads).
std::string PolicyError(const std::string& pointer, const json& value, json doc = Minimal()) {
  doc[json::json_pointer(pointer)] = value;
  auto p = ParseServerPolicy(doc, kSeccompDir, "test.json");
  return p.ok() ? "" : p.status().message();
}

TEST(PolicyLoadTest, ShippedPoliciesLoad) {
  auto def = LoadServerPolicy("default", kPolicies);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  const ServerPolicy& d = **def;
  EXPECT_EQ(d.name(), "default");
  EXPECT_EQ(d.limits().memory_bytes, 1024ull << 20);
  EXPECT_EQ(d.limits().pids, 128u);
  EXPECT_DOUBLE_EQ(d.limits().cpus, 1.0);
  EXPECT_EQ(d.settings.timeout_default_s, 60u);
  EXPECT_EQ(d.settings.timeout_max_s, 600u);
  EXPECT_EQ(d.sandbox->network, jail::NetworkMode::kNone);
  EXPECT_EQ(d.settings.preload.at(0), "numpy");
  EXPECT_EQ(d.sandbox->seccomp.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(d.sandbox->seccomp.default_errno_ret, 38);
  EXPECT_EQ(d.sandbox->seccomp_source_path, kSeccompDir + "/default.json");
  EXPECT_TRUE(d.sandbox->landlock);
  EXPECT_EQ(d.settings.workspace_bytes, 4096ull << 20);
  EXPECT_EQ(d.settings.workspace_inodes, 100000u);
  EXPECT_EQ(d.settings.workspace_reserve_bytes, 64ull << 20);
  EXPECT_EQ(d.settings.workspace_reserve_inodes, 256u);

  auto strict = LoadServerPolicy(kPolicies + "/strict.json", kPolicies);
  ASSERT_TRUE(strict.ok()) << strict.status().ToString();
  EXPECT_LT((*strict)->limits().memory_bytes, d.limits().memory_bytes);
  EXPECT_LT((*strict)->limits().pids, d.limits().pids);
  EXPECT_LT((*strict)->settings.workspace_bytes, d.settings.workspace_bytes);
  EXPECT_LT((*strict)->settings.workspace_inodes, d.settings.workspace_inodes);
  EXPECT_LT((*strict)->limits().cpus, d.limits().cpus);
  EXPECT_TRUE((*strict)->settings.preload.empty());
  size_t strict_names = 0, default_names = 0;
  for (const auto& r : (*strict)->sandbox->seccomp.syscalls) strict_names += r.names.size();
  for (const auto& r : d.sandbox->seccomp.syscalls) default_names += r.names.size();
  EXPECT_LT(strict_names, default_names);
}

TEST(PolicyLoadTest, MinimalPolicyGetsDefaults) {
  auto p = ParseServerPolicy(Minimal(), kSeccompDir, "t.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->limits().memory_bytes, jail::Limits{}.memory_bytes);
  EXPECT_LE(WorstCaseReplyBytes(SessionSettings{}), kMaxReplyBytes);
  EXPECT_EQ((*p)->settings.workspace_bytes, SessionSettings{}.workspace_bytes);
  EXPECT_EQ((*p)->settings.workspace_reserve_bytes, SessionSettings{}.workspace_reserve_bytes);
}

TEST(PolicyLoadTest, WorkspaceBudgetIsReadAndShown) {
  json doc = Minimal();
  doc["limits"] = {{"workspace_mb", 16},
                   {"workspace_inodes", 1000},
                   {"workspace_reserve_mb", 24},
                   {"workspace_reserve_inodes", 500}};
  auto p = ParseServerPolicy(doc, kSeccompDir, "t.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->settings.workspace_bytes, 16ull << 20);
  EXPECT_EQ((*p)->settings.workspace_inodes, 1000u);
  EXPECT_EQ((*p)->settings.workspace_reserve_bytes, 24ull << 20);
  EXPECT_EQ((*p)->settings.workspace_reserve_inodes, 500u);
  const json shown = ServerPolicyToJson(**p)["limits"];
  EXPECT_EQ(shown["workspace_mb"], 16);
  EXPECT_EQ(shown["workspace_inodes"], 1000);
  EXPECT_EQ(shown["workspace_reserve_mb"], 24);
  EXPECT_EQ(shown["workspace_reserve_inodes"], 500);
}

TEST(PolicyLoadTest, InstallerSettingsAreReadAndShown) {
  auto defaults = ParseServerPolicy(Minimal(), kSeccompDir, "t.json");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ((*defaults)->settings.install_timeout_s, 300u);
  EXPECT_FALSE((*defaults)->settings.allow_sdist);
  json doc = Minimal();
  doc["limits"] = {{"install_timeout_s", 20}};
  doc["allow_sdist"] = true;
  auto p = ParseServerPolicy(doc, kSeccompDir, "t.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->settings.install_timeout_s, 20u);
  EXPECT_TRUE((*p)->settings.allow_sdist);
  const json shown = ServerPolicyToJson(**p);
  EXPECT_EQ(shown["limits"]["install_timeout_s"], 20);
  EXPECT_EQ(shown["allow_sdist"], true);
  doc["allow_sdist"] = "yes";
  auto bad = ParseServerPolicy(doc, kSeccompDir, "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("allow_sdist"), std::string::npos)
      << bad.status().message();
  doc["allow_sdist"] = false;
  doc["limits"] = {{"install_timeout_s", 1}};
  EXPECT_FALSE(ParseServerPolicy(doc, kSeccompDir, "t.json").ok());
}

TEST(PolicyLoadTest, RecordNotebookIsOnByDefaultReadAndShown) {
  auto defaults = ParseServerPolicy(Minimal(), kSeccompDir, "t.json");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_TRUE((*defaults)->settings.record_notebook);
  EXPECT_EQ(ServerPolicyToJson(**defaults)["record_notebook"], true);
  json doc = Minimal();
  doc["record_notebook"] = false;
  auto p = ParseServerPolicy(doc, kSeccompDir, "t.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE((*p)->settings.record_notebook);
  EXPECT_EQ(ServerPolicyToJson(**p)["record_notebook"], false);
  doc["record_notebook"] = 0;
  auto bad = ParseServerPolicy(doc, kSeccompDir, "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("record_notebook"), std::string::npos)
      << bad.status().message();
}

TEST(PolicyValidationTest, ErrorsNameTheJsonPath) {
  struct Case {
    std::string pointer;
    json value;
    std::string want;  // the message starts with this
  };
  const Case cases[] = {
      {"/limits/memory_mb", -1, "limits.memory_mb: must be a positive integer, got -1"},
      {"/limits/memory_mb", 16, "limits.memory_mb: must be between 32 and"},
      {"/limits/memory_mb", "1G", "limits.memory_mb: must be a positive integer, got \"1G\""},
      {"/limits/memory_mb", 1.5, "limits.memory_mb: must be a positive integer, got 1.5"},
      {"/limits/memroy_mb", 64, "limits.memroy_mb: unknown field (did you mean 'memory_mb'?)"},
      {"/limits/pids", 0, "limits.pids: must be a positive integer, got 0"},
      {"/limits/cpus", 0, "limits.cpus: must be a number of cores"},
      {"/limits/cpus", "one", "limits.cpus: must be a number of cores"},
      {"/limits/timeout_default_s", 700, "limits.timeout_default_s: must not exceed timeout_max_s"},
      {"/limits/interrupt_grace_ms", 5, "limits.interrupt_grace_ms: must be between 100"},
      {"/limits/nofile", 10, "limits.nofile: must be between 64"},
      {"/limits/sigpending", 4, "limits.sigpending: must be between 8 and 65536"},
      {"/limits/msgqueue_kb", -1, "limits.msgqueue_kb: must be an integer >= 0, got -1"},
      {"/limits/inotify_instances", 5000, "limits.inotify_instances: must be between 0 and 1024"},
      {"/limits/inotify_watches", "many", "limits.inotify_watches: must be an integer >= 0"},
      {"/limits/output_kb", 4096, "limits.output_kb: must be between 1 and 2048"},
      {"/limits/max_images", 64, "limits: 4 * output_kb + max_images * image_kb"},
      {"/limits/max_sessions", 0, "limits.max_sessions: must be a positive integer"},
      {"/limits/idle_timeout_s", true, "limits.idle_timeout_s: must be a positive integer"},
      {"/limits/start_timeout_s", 7200, "limits.start_timeout_s: must be between 1 and 3600"},
      {"/limits/workspace_mb", 4, "limits.workspace_mb: must be between 8 and"},
      {"/limits/workspace_mb", "1G", "limits.workspace_mb: must be a positive integer"},
      {"/limits/workspace_inodes", 10, "limits.workspace_inodes: must be between 64"},
      {"/limits/workspace_reserve_mb", 0, "limits.workspace_reserve_mb: must be a positive"},
      {"/limits/workspace_reserve_inodes", 2, "limits.workspace_reserve_inodes: must be between 8"},
      {"/limits/workspace_gb", 1, "limits.workspace_gb: unknown field"},
      {"/limits", 5, "limits: must be an object, got 5"},
      {"/nmae", "x", "nmae: unknown field (did you mean 'name'?)"},
      {"/name", "", "name: must not be empty"},
      {"/name", "a b", "name: must be letters"},
      {"/description", 3, "description: must be a string, got 3"},
      {"/network", "host", "network: \"host\" is refused for kernel policies"},
      {"/network", "bridge", "network: must be \"none\""},
      {"/preload", "numpy", "preload: must be an array of strings"},
      {"/preload", json::array({"numpy", "os; rm -rf"}), "preload[1]: not a Python module name"},
      {"/preload", json::array({"numpy", 3}), "preload[1]: must be a string, got 3"},
      {"/landlock", "yes", "landlock: must be true or false"},
      {"/seccomp_profile", "../../etc/x.json", "seccomp_profile: must be a plain file name"},
      {"/seccomp_profile", "missing.json", "seccomp_profile: cannot read file"},
      {"/seccomp_profile", 7, "seccomp_profile: must be a file name or an OCI profile object"},
      {"/seccomp_profile", json{{"defaultAction", "SCMP_ACT_NOPE"}},
       "seccomp_profile.defaultAction: unknown action 'SCMP_ACT_NOPE'"},
      {"/seccomp_profile", json::parse(R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["write", "opne"], "action": "SCMP_ACT_ALLOW"}]})"),
       "seccomp_profile.syscalls[1].names[1]: unknown syscall 'opne'"},
      {"/extra_binds", json::array({json{{"source", "/usr/share"}, {"target", "data"}}}),
       "extra_binds[0].target: must be an absolute path"},
      {"/extra_binds", json::array({json{{"source", "/usr/share"}, {"target", "/workspace/x"}}}),
       "extra_binds[0].target: \"/workspace/x\" overlaps /workspace"},
      {"/extra_binds", json::array({json{{"source", "/usr/share"}, {"target", "/proc"}}}),
       "extra_binds[0].target: \"/proc\" overlaps /proc"},
      {"/extra_binds", json::array({json{{"source", "/usr/share"}, {"target", "/dev/shm"}}}),
       "extra_binds[0].target: \"/dev/shm\" overlaps /dev"},
      {"/extra_binds", json::array({json{{"source", "/usr/share"}, {"target", "/"}}}),
       "extra_binds[0].target: cannot bind over the sandbox root"},
      {"/extra_binds", json::array({json{{"source", "/usr/share"}, {"target", "/data/../x"}}}),
       "extra_binds[0].target: must be a normalized path"},
      {"/extra_binds", json::array({json{{"source", "/proc/1"}, {"target", "/data"}}}),
       "extra_binds[0].source: \"/proc/1\" is under /proc"},
      {"/extra_binds", json::array({json{{"source", "/"}, {"target", "/data"}}}),
       "extra_binds[0].source: the host root is never bound"},
      {"/extra_binds",
       json::array({json{{"source", "/tmp"}, {"target", "/data"}, {"writable", true}}}),
       "extra_binds[0].writable: writable binds are refused unless the policy documents why"},
      {"/extra_binds",
       json::array(
           {json{{"source", "/etc"}, {"target", "/data"}, {"writable", true}, {"reason", "r"}}}),
       "extra_binds[0].source: \"/etc\" is a host system path"},
      {"/extra_binds", json::array({json{{"source", "/nonexistent-mcpx"}, {"target", "/data"}}}),
       "extra_binds[0].source: \"/nonexistent-mcpx\" does not exist"},
      {"/extra_binds",
       json::array({json{{"source", "/usr/share"}, {"target", "/data"}},
                    json{{"source", "/usr/lib"}, {"target", "/data/lib"}}}),
       "extra_binds[1].target: overlaps extra_binds[0].target"},
      {"/extra_binds", json::array({json{{"source", "/usr/share"}, {"target", "/d"}, {"rw", 1}}}),
       "extra_binds[0].rw: unknown field"},
  };
  for (const Case& c : cases) {
    const std::string got = PolicyError(c.pointer, c.value);
    EXPECT_EQ(got.substr(0, c.want.size()), c.want) << c.pointer << " = " << c.value.dump();
  }
}

TEST(PolicyValidationTest, ValidBindsAreAccepted) {
  const json binds = json::array(
      {json{{"source", "/usr/share/doc"}, {"target", "/data/doc"}},
       json{{"source", "/nonexistent-mcpx"}, {"target", "/data/opt"}, {"optional", true}},
       json{{"source", "/tmp"},
            {"target", "/scratch"},
            {"writable", true},
            {"reason", "shared scratch space for a test"}}});
  EXPECT_EQ(PolicyError("/extra_binds", binds), "");
}

TEST(PolicyValidationTest, RequiredFields) {
  EXPECT_EQ(PolicyError("/x", 1, json::object()).substr(0, 4), "x: u");
  json no_name = Minimal();
  no_name.erase("name");
  EXPECT_EQ(ParseServerPolicy(no_name, kSeccompDir, "t").status().message(), "name: required");
  json no_seccomp = Minimal();
  no_seccomp.erase("seccomp_profile");
  EXPECT_EQ(ParseServerPolicy(no_seccomp, kSeccompDir, "t").status().message().substr(0, 25),
            "seccomp_profile: required");
  EXPECT_EQ(ParseServerPolicy(json::array(), kSeccompDir, "t").status().message().substr(0, 34),
            "(top level): must be an object, go");
}

// What `policy show` prints loads back to the same policy.
TEST(PolicyRoundTripTest, ShowOutputIsALoadablePolicy) {
  for (const char* name : {"default", "strict"}) {
    auto p = LoadServerPolicy(name, kPolicies);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    const json shown = ServerPolicyToJson(**p);
    auto again = ParseServerPolicy(shown, kSeccompDir, "shown");
    ASSERT_TRUE(again.ok()) << name << ": " << again.status().ToString();
    EXPECT_EQ(ServerPolicyToJson(**again), shown) << name;
  }
}

}  // namespace
}  // namespace mcpx::session
