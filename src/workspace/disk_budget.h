// The workspace's disk and inode budget. Every session's sandbox mounts the same workspace
// read-write, so one session could fill the filesystem under it and break the client's
// write_file, the other sessions and the saved outputs. RLIMIT_FSIZE bounds one file only.
//
// Mechanism: accounting. The server measures and the session manager kills the running cell by
// name when the tree has grown past the policy's limits, or free space on the filesystem has
// dropped below the reserve kept for the client's own writes, during that cell.
// - Free bytes and inodes come from fstatvfs on the workspace root (one syscall, loop thread).
// - The tree's usage (allocated blocks, st_blocks * 512, so fallocate and sparse files count as
//   what they really hold; plus the entry count) comes from a scan on a worker thread: never on
//   the event loop, openat/fstatat only, symlinks never followed, other filesystems not entered,
//   and it stops counting once past the inode limit, so its work is bounded.
// Accounting reacts at the manager's tick: a writer faster than that overshoots by what it
// writes in between. A kernel-enforced quota (project quota) would not; ProbeQuotaSupport says
// whether the filesystem could have one, for `doctor`, but it is not set up here.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "util/status.h"
#include "util/unique_fd.h"
#include "workspace/workspace.h"

namespace mcpx::workspace {

struct DiskLimits {
  uint64_t bytes = 0;   // the most the tree may hold
  uint64_t inodes = 0;  // the most entries (files, folders, links) the tree may hold
  uint64_t reserve_bytes = 0;
  uint64_t reserve_inodes = 0;
};

struct FsSpace {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;    // f_bavail: what an unprivileged writer can still use
  uint64_t total_inodes = 0;  // 0 on filesystems without a fixed inode table (btrfs)
  uint64_t free_inodes = 0;
};
Result<FsSpace> MeasureFs(int fd);

struct TreeUsage {
  uint64_t bytes = 0;        // allocated: sum of st_blocks * 512 (the root folder itself excluded)
  uint64_t inodes = 0;       // entries below the root; hard links count once per name
  bool stopped = false;      // stopped past ScanOptions::max_inodes: both counts are lower bounds
  uint64_t unreadable = 0;   // folders that could not be opened (their contents are not counted)
  uint64_t not_entered = 0;  // folders below max_depth or on another filesystem
};

struct ScanOptions {
  uint64_t max_inodes = UINT64_MAX;  // stop counting once the tree has more entries than this
  size_t max_depth = 128;            // open folder fds at most; deeper ones are not entered
};
// Walks the folder `dir_fd` (any fd of a directory, O_PATH is fine).
Result<TreeUsage> ScanTree(int dir_fd, const ScanOptions& options);

// Whether the workspace's filesystem could enforce a project quota (for `doctor`).
struct QuotaSupport {
  std::string fs_type;    // from /proc/self/mountinfo, "" if not found
  bool prjquota = false;  // mounted with prjquota/pquota
  std::string detail;     // one line for a human
};
QuotaSupport ProbeQuotaSupport(int fd);

// A cell's starting point: free space when it began, and the first tree scan that started after.
struct DiskMark {
  std::optional<FsSpace> fs;
  uint64_t scan_seq = 0;  // scans numbered from this one on started after the cell began
  std::optional<TreeUsage> tree;
};

class DiskBudget {
 public:
  // Keeps its own fd of the workspace root and starts the worker thread (idle until Activate).
  static Result<std::unique_ptr<DiskBudget>> Create(int root_fd, DiskLimits limits);
  ~DiskBudget();
  DiskBudget(const DiskBudget&) = delete;
  DiskBudget& operator=(const DiskBudget&) = delete;

  const DiskLimits& limits() const { return limits_; }

  // Keeps the worker scanning for about a second; the manager calls it on every tick.
  void Activate();
  // Call when a cell starts (activates the worker too).
  DiskMark Mark();
  // Why the running cell must be killed, or nullopt. Fills `start.tree` from the first scan that
  // began after the cell did.
  std::optional<std::string> Check(DiskMark& start);
  // Whether the server may write `bytes` more (its saved outputs) without eating the reserve.
  Status RoomFor(uint64_t bytes) const;
  // The most recent finished scan, and its sequence number (0: none yet).
  std::optional<TreeUsage> LastScan(uint64_t* seq = nullptr) const;

 private:
  DiskBudget(UniqueFd fd, DiskLimits limits);
  void Run();

  UniqueFd fd_;
  DiskLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int64_t active_until_ms_ = 0;
  uint64_t next_seq_ = 1;  // sequence number of the next scan to start
  uint64_t last_seq_ = 0;
  std::optional<TreeUsage> last_;
  std::thread worker_;
};

// A file the server writes on its own account (long output saved whole, the notebook record):
// refused when it would eat into the reserve (no budget, `budget` null: never), else written
// atomically.
Result<WriteResult> WriteWithinReserve(const Workspace& ws, const DiskBudget* budget,
                                       std::string_view path, std::string_view data);

}  // namespace mcpx::workspace
