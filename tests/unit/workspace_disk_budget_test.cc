// The workspace disk budget's measuring side against temp trees: allocated blocks (sparse files,
// fallocate), entry counts, symlinks never followed, the bounded walk, and the kill decisions.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "util/unique_fd.h"
#include "workspace/disk_budget.h"

namespace mcpx::workspace {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1ull << 20;

class DiskBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mcpx-disk-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fd_ = UniqueFd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(fd_);
    char out[] = "/tmp/mcpx-disk-out-XXXXXX";
    ASSERT_NE(::mkdtemp(out), nullptr);
    outside_ = out;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
    fs::remove_all(outside_, ec);
  }

  TreeUsage Scan(ScanOptions o = {}) {
    auto u = ScanTree(fd_.get(), o);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    return u.ok() ? *u : TreeUsage{};
  }

  static void Allocate(const fs::path& p, uint64_t bytes) {
    UniqueFd f(::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(f);
    ASSERT_EQ(::posix_fallocate(f.get(), 0, static_cast<off_t>(bytes)), 0);
  }

  static void Touch(const fs::path& p) { std::ofstream(p).put('x'); }

  // The next scan that starts after now has finished (the worker scans while active).
  static void WaitForFreshScan(DiskBudget& b) {
    uint64_t want = 0;
    b.LastScan(&want);
    want += 2;  // one may already be running with an older view
    for (int i = 0; i < 600; ++i) {
      b.Activate();
      uint64_t seq = 0;
      b.LastScan(&seq);
      if (seq >= want) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "the worker never finished a scan";
  }

  fs::path root_, outside_;
  UniqueFd fd_;
};

TEST_F(DiskBudgetTest, EmptyTreeIsEmpty) {
  const TreeUsage u = Scan();
  EXPECT_EQ(u.inodes, 0u);
  EXPECT_EQ(u.bytes, 0u);
  EXPECT_FALSE(u.stopped);
}

TEST_F(DiskBudgetTest, SparseFileCountsWhatItHolds) {
  {
    UniqueFd f(::open((root_ / "sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(f);
    ASSERT_EQ(::ftruncate(f.get(), static_cast<off_t>(512 * kMiB)), 0);
  }
  const TreeUsage u = Scan();
  EXPECT_EQ(u.inodes, 1u);
  EXPECT_LT(u.bytes, 1 * kMiB) << "a 512 MiB hole holds no blocks";
}

TEST_F(DiskBudgetTest, FallocateCountsItsReservation) {
  Allocate(root_ / "reserved", 8 * kMiB);  // size is 8 MiB but nothing was written
  const TreeUsage u = Scan();
  EXPECT_EQ(u.inodes, 1u);
  EXPECT_GE(u.bytes, 8 * kMiB);
}

TEST_F(DiskBudgetTest, CountsEveryEntryInNestedFolders) {
  fs::create_directories(root_ / "a" / "b");
  for (int i = 0; i < 300; ++i) Touch(root_ / "a" / "b" / ("f" + std::to_string(i)));
  for (int i = 0; i < 200; ++i) Touch(root_ / ("g" + std::to_string(i)));
  const TreeUsage u = Scan();
  EXPECT_EQ(u.inodes, 502u);  // 500 files + 2 folders
  EXPECT_FALSE(u.stopped);
}

TEST_F(DiskBudgetTest, SymlinksAreNeverFollowed) {
  Allocate(outside_ / "big", 16 * kMiB);
  fs::create_directories(outside_ / "dir");
  for (int i = 0; i < 50; ++i) Touch(outside_ / "dir" / std::to_string(i));
  fs::create_symlink(outside_ / "big", root_ / "to_big");
  fs::create_directory_symlink(outside_ / "dir", root_ / "to_dir");
  fs::create_directory_symlink("/", root_ / "to_root");
  fs::create_directory_symlink(".", root_ / "loop");
  const TreeUsage u = Scan();
  EXPECT_EQ(u.inodes, 4u);  // the four links themselves
  EXPECT_LT(u.bytes, 1 * kMiB);
}

TEST_F(DiskBudgetTest, StopsCountingPastTheLimit) {
  for (int i = 0; i < 500; ++i) Touch(root_ / std::to_string(i));
  const TreeUsage u = Scan(ScanOptions{100, 128});
  EXPECT_TRUE(u.stopped);
  EXPECT_EQ(u.inodes, 101u);  // one past the limit is enough to know
}

TEST_F(DiskBudgetTest, DoesNotEnterFoldersBelowMaxDepth) {
  fs::path p = root_;
  for (int i = 0; i < 6; ++i) p /= "d";
  fs::create_directories(p);
  Touch(p / "deep");
  const TreeUsage all = Scan();
  EXPECT_EQ(all.inodes, 7u);
  const TreeUsage shallow = Scan(ScanOptions{UINT64_MAX, 3});
  EXPECT_EQ(shallow.not_entered, 1u);
  EXPECT_LT(shallow.inodes, all.inodes);
}

TEST_F(DiskBudgetTest, MeasureFsSeesTheFilesystem) {
  auto fs = MeasureFs(fd_.get());
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  EXPECT_GT(fs->total_bytes, 0u);
  EXPECT_LE(fs->free_bytes, fs->total_bytes);
}

TEST_F(DiskBudgetTest, KillsACellThatGrowsTheTreePastTheLimit) {
  auto b = DiskBudget::Create(fd_.get(), {8 * kMiB, 1000, 0, 0});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  DiskBudget& budget = **b;
  DiskMark cell = budget.Mark();
  WaitForFreshScan(budget);
  EXPECT_EQ(budget.Check(cell), std::nullopt);  // sets the cell's baseline
  ASSERT_TRUE(cell.tree.has_value());
  Allocate(root_ / "fill", 12 * kMiB);
  WaitForFreshScan(budget);
  auto why = budget.Check(cell);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("workspace limit 8 MiB exceeded"), std::string::npos) << *why;
  EXPECT_NE(why->find("delete files to go on"), std::string::npos) << *why;

  // The next cell starts over the limit: it is not killed unless it adds to the tree.
  DiskMark next = budget.Mark();
  WaitForFreshScan(budget);
  EXPECT_EQ(budget.Check(next), std::nullopt);
  WaitForFreshScan(budget);
  EXPECT_EQ(budget.Check(next), std::nullopt);
  Allocate(root_ / "more", 1 * kMiB);
  WaitForFreshScan(budget);
  EXPECT_TRUE(budget.Check(next).has_value());
}

TEST_F(DiskBudgetTest, KillsACellThatCreatesTooManyFiles) {
  auto b = DiskBudget::Create(fd_.get(), {1024 * kMiB, 100, 0, 0});
  ASSERT_TRUE(b.ok());
  DiskBudget& budget = **b;
  DiskMark cell = budget.Mark();
  WaitForFreshScan(budget);
  EXPECT_EQ(budget.Check(cell), std::nullopt);
  for (int i = 0; i < 150; ++i) Touch(root_ / std::to_string(i));
  WaitForFreshScan(budget);
  auto why = budget.Check(cell);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("workspace limit of 100 files and folders exceeded"), std::string::npos)
      << *why;
}

TEST_F(DiskBudgetTest, KillsWhenFreeSpaceDropsBelowTheReserve) {
  // A reserve larger than any disk: free space is below it; the kill needs it to have dropped
  // during the cell, which a mark with more free space than now stands for.
  auto b = DiskBudget::Create(fd_.get(), {1024 * kMiB, 100000, UINT64_MAX / 2, 0});
  ASSERT_TRUE(b.ok());
  DiskMark before = (*b)->Mark();
  // A mark with no free space stands for a cell during which free space did not drop (the real
  // mark would race with whatever else writes this filesystem: a build beside the tests).
  DiskMark steady = before;
  steady.fs->free_bytes = 0;
  EXPECT_EQ((*b)->Check(steady), std::nullopt) << "free space did not drop during the cell";
  DiskMark fuller = before;
  fuller.fs->free_bytes = UINT64_MAX;
  auto why = (*b)->Check(fuller);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("kept for the client's own files"), std::string::npos) << *why;
}

TEST_F(DiskBudgetTest, SavedOutputsKeepOutOfTheReserve) {
  auto small = DiskBudget::Create(fd_.get(), {1024 * kMiB, 100000, 1 * kMiB, 8});
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE((*small)->RoomFor(4096).ok());
  auto huge = DiskBudget::Create(fd_.get(), {1024 * kMiB, 100000, UINT64_MAX / 2, 8});
  ASSERT_TRUE(huge.ok());
  const Status st = (*huge)->RoomFor(4096);
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_NE(st.message().find("for the client's own files"), std::string::npos) << st.message();
}

// The server takes SIGTERM/SIGINT through a signalfd that only its main thread blocks; a worker
// that did not block them could receive them and end the server by their default action.
TEST_F(DiskBudgetTest, WorkerBlocksEverySignal) {
  auto b = DiskBudget::Create(fd_.get(), {1024 * kMiB, 1000, 0, 0});
  ASSERT_TRUE(b.ok());
  const std::string main_tid = std::to_string(::gettid());
  size_t workers = 0;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    if (task.path().filename() == main_tid) continue;
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("SigBlk:", 0) != 0) continue;
      ++workers;
      // Every signal the kernel can deliver to the process (1-64; 32 and 33 are glibc's own).
      EXPECT_NE(line.find("fffffff"), std::string::npos) << task.path() << ": " << line;
      EXPECT_EQ(line.find("0000000"), std::string::npos) << task.path() << ": " << line;
    }
  }
  EXPECT_EQ(workers, 1u);
}

TEST(QuotaSupportTest, NamesTheFilesystem) {
  UniqueFd fd(::open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  const QuotaSupport q = ProbeQuotaSupport(fd.get());
  EXPECT_FALSE(q.fs_type.empty()) << q.detail;
  EXPECT_FALSE(q.detail.empty());
}

// A loop-mounted ext4 with the project feature and the prjquota mount option, where root can make
// one; skipped with the reason otherwise (e.g. a kernel without CONFIG_QUOTA/CONFIG_QFMT_V2).
TEST(QuotaSupportTest, SeesPrjquotaOnALoopExt4) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to loop-mount a filesystem";
  if (::access("/usr/sbin/mkfs.ext4", X_OK) != 0 && ::access("/sbin/mkfs.ext4", X_OK) != 0) {
    GTEST_SKIP() << "mkfs.ext4 not installed";
  }
  char tmpl[] = "/tmp/mcpx-prjquota-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, img = dir + "/img", mnt = dir + "/mnt";
  fs::create_directory(mnt);
  const std::string make = "truncate -s 16M " + img +
                           " && mkfs.ext4 -q -O quota,project -E quotatype=prjquota " + img +
                           " >/dev/null 2>&1";
  bool mounted = false;
  if (std::system(make.c_str()) == 0) {
    mounted =
        std::system(("mount -o loop,prjquota " + img + " " + mnt + " 2>/dev/null").c_str()) == 0;
  }
  if (!mounted) {
    fs::remove_all(dir);
    GTEST_SKIP() << "cannot mount an ext4 with prjquota here (kernel without quota support? "
                    "dmesg says)";
  }
  UniqueFd fd(::open(mnt.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  const QuotaSupport q = fd ? ProbeQuotaSupport(fd.get()) : QuotaSupport{};
  fd.reset();
  EXPECT_EQ(std::system(("umount " + mnt).c_str()), 0);
  fs::remove_all(dir);
  EXPECT_EQ(q.fs_type, "ext4");
  EXPECT_TRUE(q.prjquota) << q.detail;
}

}  // namespace
}  // namespace mcpx::workspace
