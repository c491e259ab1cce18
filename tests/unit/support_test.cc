// The machine-support probes give sane answers here, and the Python probe tells a working module
// from a missing one.
#include "jail/support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace mcpx::jail {
namespace {

// (major, minor) of uname -r; (0, 0) when unparsable.
std::pair<int, int> KernelVersion(const std::string& release) {
  int major = 0;
  int minor = 0;
  if (std::sscanf(release.c_str(), "%d.%d", &major, &minor) != 2) return {0, 0};
  return {major, minor};
}

TEST(SupportTest, KernelFeaturesOfARecentKernel) {
  const MachineSupport s = ProbeMachineSupport();
  ASSERT_FALSE(s.kernel_release.empty());
  EXPECT_EQ(s.uid, ::getuid());
  if (KernelVersion(s.kernel_release) < std::make_pair(5, 7)) {
    GTEST_SKIP() << "kernel " << s.kernel_release << " predates openat2/pidfd/clone3";
  }
  EXPECT_TRUE(s.openat2);
  EXPECT_TRUE(s.pidfd);
  EXPECT_TRUE(s.clone3);
  EXPECT_TRUE(s.no_new_privs);
  EXPECT_TRUE(s.cap_ambient);
}

TEST(SupportTest, SeccompFilterModeIsDetected) {
  std::ifstream status("/proc/self/status");
  std::string line;
  bool kernel_has_seccomp = false;
  while (std::getline(status, line)) kernel_has_seccomp |= line.rfind("Seccomp:", 0) == 0;
  if (!kernel_has_seccomp) GTEST_SKIP() << "kernel built without CONFIG_SECCOMP";
  const MachineSupport s = ProbeMachineSupport();
  EXPECT_TRUE(s.seccomp_filter);
  EXPECT_GE(s.seccomp_mode, 0);
}

TEST(SupportTest, LandlockAbiIsReportedOrExplained) {
  const MachineSupport s = ProbeMachineSupport();
  if (s.landlock_abi == 0) {
    // Not a pass: say why, so a machine that should have it is noticed.
    GTEST_SKIP() << "no Landlock here: errno " << s.landlock_errno;
  }
  EXPECT_GE(s.landlock_abi, 1);
  EXPECT_EQ(s.landlock_errno, 0);
}

TEST(SupportTest, UserNamespacesWorkWhereAllowed) {
  const MachineSupport s = ProbeMachineSupport();
  ASSERT_TRUE(s.ns.error.empty()) << s.ns.error;
  if (!s.userns_in_kernel) GTEST_SKIP() << "kernel without user namespaces";
  if (s.max_user_namespaces.value_or(1) == 0) GTEST_SKIP() << "user.max_user_namespaces=0";
  if (s.euid != 0 && (s.unprivileged_userns_clone.value_or(1) == 0 ||
                      s.apparmor_restrict_unprivileged.value_or(0) == 1)) {
    GTEST_SKIP() << "unprivileged user namespaces are restricted by sysctl here";
  }
  EXPECT_EQ(s.ns.user, 0);
  EXPECT_EQ(s.ns.uid_map, 0);
  EXPECT_EQ(s.ns.mount, 0);
  EXPECT_EQ(s.ns.mount_private, 0);
  EXPECT_EQ(s.ns.pid, 0);
  EXPECT_EQ(s.ns.net, 0);
  EXPECT_EQ(s.ns.ipc, 0);
  EXPECT_EQ(s.ns.uts, 0);
  EXPECT_EQ(s.ns.cgroup, 0);
  EXPECT_TRUE(s.userns_works());
  EXPECT_TRUE(s.mountns_works());
}

TEST(SupportTest, PythonProbeTellsWorkingFromMissingModules) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  const PythonProbe p = ProbePython("/usr/bin/python3", {"json", "no_such_module_mcpx"}, 20000);
  ASSERT_TRUE(p.ran) << p.error;
  EXPECT_EQ(p.version.rfind("3.", 0), 0u) << p.version;
  ASSERT_EQ(p.modules.size(), 2u);
  EXPECT_EQ(p.modules[0].name, "json");
  EXPECT_TRUE(p.modules[0].ok);
  EXPECT_EQ(p.modules[1].name, "no_such_module_mcpx");
  EXPECT_FALSE(p.modules[1].ok);
  EXPECT_NE(p.modules[1].detail.find("ModuleNotFoundError"), std::string::npos)
      << p.modules[1].detail;
}

TEST(SupportTest, PythonProbeReportsAMissingInterpreter) {
  const PythonProbe p = ProbePython("/nonexistent/python3", {"numpy"}, 5000);
  EXPECT_FALSE(p.ran);
  EXPECT_NE(p.error.find("/nonexistent/python3"), std::string::npos) << p.error;
  ASSERT_EQ(p.modules.size(), 1u);
  EXPECT_FALSE(p.modules[0].ok);
}

}  // namespace
}  // namespace mcpx::jail
