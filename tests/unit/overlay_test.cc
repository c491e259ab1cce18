// The package overlay is a real venv over the system's Python: its interpreter puts the overlay's
// site-packages before Debian's dist-packages, and the system packages stay visible.
#include "session/overlay.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "jail/userns.h"

namespace mcpx::session {
namespace {

namespace fs = std::filesystem;

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mcpx-overlay-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/packages";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  std::string base_, dir_;
};

TEST_F(OverlayTest, IsAVenvLayeredOverTheSystemPython) {
  ASSERT_TRUE(PrepareOverlay(dir_).ok());
  std::ifstream cfg(dir_ + "/pyvenv.cfg");
  std::stringstream text;
  text << cfg.rdbuf();
  EXPECT_NE(text.str().find("include-system-site-packages = true"), std::string::npos);
  EXPECT_EQ(fs::read_symlink(dir_ + "/bin/python3"), "/usr/bin/python3");
  auto site = OverlaySitePackages(dir_);
  ASSERT_TRUE(site.ok()) << site.status().ToString();
  EXPECT_TRUE(fs::is_directory(*site));

  // What the kernels' interpreter sees: its own prefix, the overlay first, numpy from Debian.
  const std::string out = Shell(dir_ +
                                "/bin/python3 -s -c \"import sys, numpy; "
                                "print(sys.prefix); "
                                "print([p for p in sys.path if p.endswith('-packages')]); "
                                "print(numpy.__file__)\"");
  std::istringstream lines(out);
  std::string prefix, paths, numpy;
  std::getline(lines, prefix);
  std::getline(lines, paths);
  std::getline(lines, numpy);
  EXPECT_EQ(prefix, dir_) << out;
  const auto overlay_at = paths.find(*site);
  const auto system_at = paths.find("/usr/lib/python3/dist-packages");
  ASSERT_NE(overlay_at, std::string::npos) << paths;
  ASSERT_NE(system_at, std::string::npos) << paths;
  EXPECT_LT(overlay_at, system_at) << paths;
  EXPECT_EQ(numpy.rfind("/usr/lib/python3/dist-packages/numpy", 0), 0u) << numpy;
}

TEST_F(OverlayTest, AnExistingOverlayIsLeftAlone) {
  ASSERT_TRUE(PrepareOverlay(dir_).ok());
  auto site = OverlaySitePackages(dir_);
  ASSERT_TRUE(site.ok());
  std::ofstream(*site + "/marker.py") << "x = 1\n";
  ASSERT_TRUE(PrepareOverlay(dir_).ok());
  EXPECT_TRUE(fs::exists(*site + "/marker.py"));
}

// A root server hands every entry to the installer's host identity: host root owns nothing the
// installer's jail writes.
TEST_F(OverlayTest, OnARootServerNothingBelongsToRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs a root server (runs as uid " << geteuid() << ")";
  ASSERT_TRUE(PrepareOverlay(dir_).ok());
  auto ids = jail::PlanIdMap(dir_);
  ASSERT_TRUE(ids.ok());
  ASSERT_NE(ids->host_uid, 0u);
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    struct stat st {};
    ASSERT_EQ(lstat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, ids->host_uid) << e.path();
  }
}

}  // namespace
}  // namespace mcpx::session
