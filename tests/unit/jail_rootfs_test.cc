// The rootfs manifest parser and the mount plan built from it (no namespaces needed).
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>

#include "jail/mounts.h"
#include "jail/rootfs.h"

namespace mcpx::jail {
namespace {

const std::string kRootfs = std::string(MCPX_SOURCE_DIR) + "/rootfs";

TEST(RootfsManifest, ShippedManifestLoads) {
  auto entries = LoadRootfsManifest(kRootfs);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  auto has = [&](const std::string& target) {
    return std::any_of(entries->begin(), entries->end(),
                       [&](const RootfsEntry& e) { return e.target == target; });
  };
  EXPECT_TRUE(has("/usr"));
  EXPECT_TRUE(has("/etc/passwd"));
  for (const RootfsEntry& e : *entries) {
    // The host's sensitive trees never enter the sandbox.
    for (const char* banned : {"/etc", "/home", "/root", "/run", "/var"}) {
      EXPECT_NE(e.target, banned);
      if (e.kind == RootfsEntry::Kind::kBind) {
        EXPECT_NE(e.source, banned);
      }
    }
  }
}

TEST(RootfsManifest, RejectsBadLines) {
  for (const char* bad : {"ro usr", "ro /usr/../etc", "bogus /x", "file /etc/x /etc/shadow",
                          "ro /usr /usr extra", "dir /a//b"}) {
    auto r = ParseRootfsManifest(bad, kRootfs);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("line 1"), std::string::npos) << bad;
    }
  }
}

TEST(RootfsManifest, OptionalAndMirror) {
  auto r = ParseRootfsManifest("ro? /no/such/path\nmirror /no/such/link\nmirror /bin\n", kRootfs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].target, "/bin");
}

TEST(MountPlan, WorkspaceIsNoexecNofollowAndTargetsStayInStage) {
  MountRequest req;
  req.workspace = "/tmp";
  req.tmp_bytes = 1 << 20;
  req.shm_bytes = 1 << 20;
  auto plan = BuildMountPlan(req);
  ASSERT_TRUE(plan.ok());
  bool found = false;
  for (const MountStep& s : plan->steps) {
    EXPECT_EQ(s.target.rfind(plan->stage + "/", 0), 0u) << s.target;
    if (s.label == "bind /workspace") {
      found = true;
      EXPECT_TRUE(s.nofollow);
      EXPECT_NE(s.attrs & MOUNT_ATTR_NOEXEC, 0u);
      EXPECT_EQ(s.attrs & MOUNT_ATTR_RDONLY, 0u);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace mcpx::jail
