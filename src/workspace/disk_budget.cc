#include "workspace/disk_budget.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "util/event_loop.h"
#include "util/units.h"

namespace mcpx::workspace {
namespace {

constexpr int64_t kActiveMs = 1000;     // a tick keeps the worker scanning this long
constexpr int64_t kMinScanGapMs = 100;  // pause between scans, at least
constexpr int kScanGapPerScanTime = 2;  // and twice the last scan's time: <= 1/3 of a core

struct OpenDir {
  DIR* dir = nullptr;
  size_t depth = 0;
};

}  // namespace

Result<FsSpace> MeasureFs(int fd) {
  struct statvfs vfs {};
  if (::fstatvfs(fd, &vfs) != 0) {
    return ErrnoStatus(Code::kInternal, "cannot measure the workspace's filesystem (fstatvfs)");
  }
  const uint64_t unit = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
  return FsSpace{static_cast<uint64_t>(vfs.f_blocks) * unit,
                 static_cast<uint64_t>(vfs.f_bavail) * unit, static_cast<uint64_t>(vfs.f_files),
                 static_cast<uint64_t>(vfs.f_favail)};
}

Result<TreeUsage> ScanTree(int dir_fd, const ScanOptions& options) {
  const int root = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return ErrnoStatus(Code::kInternal, "cannot open the workspace to measure it");
  struct stat root_st {};
  if (::fstat(root, &root_st) != 0) {
    const int err = errno;
    ::close(root);
    return ErrnoStatus(Code::kInternal, "cannot stat the workspace", err);
  }
  DIR* root_dir = ::fdopendir(root);
  if (root_dir == nullptr) {
    const int err = errno;
    ::close(root);
    return ErrnoStatus(Code::kInternal, "cannot read the workspace", err);
  }
  TreeUsage usage;
  // Depth-first with one DIR* per level: the fds held are bounded by max_depth.
  std::vector<OpenDir> stack{{root_dir, 0}};
  while (!stack.empty() && !usage.stopped) {
    OpenDir& top = stack.back();
    errno = 0;
    const dirent* de = ::readdir(top.dir);
    if (de == nullptr) {
      ::closedir(top.dir);
      stack.pop_back();
      continue;
    }
    if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
    const int parent = ::dirfd(top.dir);
    const size_t depth = top.depth;
    struct stat st {};
    // AT_SYMLINK_NOFOLLOW: a symlink counts as itself, its target is never measured.
    if (::fstatat(parent, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced away
    ++usage.inodes;
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    if (usage.inodes > options.max_inodes) {
      usage.stopped = true;
      break;
    }
    if (!S_ISDIR(st.st_mode)) continue;
    if (st.st_dev != root_st.st_dev || depth + 1 >= options.max_depth) {
      ++usage.not_entered;
      continue;
    }
    // O_NOFOLLOW: if the entry was swapped for a symlink since fstatat, the open fails.
    const int fd =
        ::openat(parent, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    const int child =
        fd >= 0 || errno != EPERM
            ? fd
            : ::openat(parent, de->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);  // O_NOATIME needs owner
    if (child < 0) {
      ++usage.unreadable;
      continue;
    }
    DIR* d = ::fdopendir(child);
    if (d == nullptr) {
      ::close(child);
      ++usage.unreadable;
      continue;
    }
    stack.push_back({d, depth + 1});
  }
  for (auto& o : stack) ::closedir(o.dir);
  return usage;
}

QuotaSupport ProbeQuotaSupport(int fd) {
  QuotaSupport q;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    q.detail = "cannot stat the workspace";
    return q;
  }
  const std::string want =
      std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::string options;
  // mountinfo: id parent major:minor root mountpoint opts [optional...] - fstype source superopts
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev;
    f >> id >> parent >> dev;
    if (dev != want) continue;
    std::string tok;
    while (f >> tok && tok != "-") {
    }
    std::string source;
    f >> q.fs_type >> source >> options;
  }
  for (std::string_view opt : {"prjquota", "pquota", "prjjquota"}) {
    if (("," + options + ",").find("," + std::string(opt) + ",") != std::string::npos) {
      q.prjquota = true;
    }
  }
  if (q.fs_type.empty()) {
    q.detail = "filesystem not found in /proc/self/mountinfo";
  } else if (q.prjquota) {
    q.detail = q.fs_type + " mounted with project quota; not used yet (accounting is)";
  } else if (q.fs_type == "ext4" || q.fs_type == "xfs") {
    q.detail = q.fs_type + " without the prjquota mount option: no project quota";
  } else {
    q.detail = q.fs_type + " has no project quota";
  }
  return q;
}

Result<std::unique_ptr<DiskBudget>> DiskBudget::Create(int root_fd, DiskLimits limits) {
  const int fd = ::openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(Code::kInternal, "cannot open the workspace to measure it");
  return std::unique_ptr<DiskBudget>(new DiskBudget(UniqueFd(fd), limits));
}

DiskBudget::DiskBudget(UniqueFd fd, DiskLimits limits) : fd_(std::move(fd)), limits_(limits) {
  // The worker is born with every signal blocked: the server takes SIGTERM/SIGINT through a
  // signalfd that the main thread blocks for itself, and a process-directed signal goes to any
  // thread that does not block it, where its default action would end the server.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  worker_ = std::thread([this] { Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

DiskBudget::~DiskBudget() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void DiskBudget::Activate() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_until_ms_ = EventLoop::NowMs() + kActiveMs;
  }
  cv_.notify_all();
}

DiskMark DiskBudget::Mark() {
  DiskMark m;
  if (auto fs = MeasureFs(fd_.get()); fs.ok()) m.fs = *fs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    m.scan_seq = next_seq_;
  }
  Activate();
  return m;
}

std::optional<TreeUsage> DiskBudget::LastScan(uint64_t* seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq != nullptr) *seq = last_seq_;
  return last_;
}

void DiskBudget::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (EventLoop::NowMs() >= active_until_ms_) {
      cv_.wait(lock, [this] { return stop_ || EventLoop::NowMs() < active_until_ms_; });
      continue;
    }
    const uint64_t seq = next_seq_++;
    lock.unlock();
    const int64_t t0 = EventLoop::NowMs();
    // One past the limit is enough to know it is exceeded; the walk stops there.
    auto usage = ScanTree(fd_.get(), ScanOptions{limits_.inodes, ScanOptions{}.max_depth});
    const int64_t took = EventLoop::NowMs() - t0;
    lock.lock();
    if (usage.ok()) {
      last_ = *usage;
      last_seq_ = seq;
    } else {
      spdlog::warn("workspace budget: {}", usage.status().ToString());
    }
    const int64_t gap = std::max<int64_t>(kMinScanGapMs, took * kScanGapPerScanTime);
    cv_.wait_for(lock, std::chrono::milliseconds(gap), [this] { return stop_; });
  }
}

std::optional<std::string> DiskBudget::Check(DiskMark& start) {
  Activate();
  const DiskLimits& l = limits_;
  const std::string tail = "; delete files to go on";
  // Free space first: it protects the client's writes whatever the tree scan has seen.
  if (auto fs = MeasureFs(fd_.get()); fs.ok() && start.fs) {
    if (fs->free_bytes < l.reserve_bytes && fs->free_bytes < start.fs->free_bytes) {
      return "workspace filesystem down to " + MiB(fs->free_bytes) + " free, below the " +
             MiB(l.reserve_bytes) + " kept for the client's own files" + tail;
    }
    if (fs->total_inodes != 0 && fs->free_inodes < l.reserve_inodes &&
        fs->free_inodes < start.fs->free_inodes) {
      return "workspace filesystem down to " + std::to_string(fs->free_inodes) +
             " free inodes, below the " + std::to_string(l.reserve_inodes) +
             " kept for the client's own files" + tail;
    }
  }
  uint64_t seq = 0;
  std::optional<TreeUsage> now = LastScan(&seq);
  if (!now || seq < start.scan_seq) return std::nullopt;  // no scan from this cell's time yet
  if (!start.tree) {
    start.tree = now;  // the cell's baseline: growth is measured from here
    return std::nullopt;
  }
  // Only growth during this cell kills it: a workspace that was already over does not stop
  // cells that do not add to it.
  if (now->bytes > l.bytes && now->bytes > start.tree->bytes) {
    return "workspace limit " + MiB(l.bytes) + " exceeded (the workspace's files hold " +
           (now->stopped ? "more than " : "") + MiB(now->bytes) + ")" + tail;
  }
  if (now->stopped && !start.tree->stopped) {
    return "workspace limit of " + std::to_string(l.inodes) +
           " files and folders exceeded (the workspace holds more)" + tail;
  }
  return std::nullopt;
}

Status DiskBudget::RoomFor(uint64_t bytes) const {
  ASSIGN_OR_RETURN(const FsSpace fs, MeasureFs(fd_.get()));
  // A saved file takes its bytes, a temp name, and maybe a parent folder or two.
  constexpr uint64_t kInodesPerWrite = 4;
  if (fs.free_bytes < bytes || fs.free_bytes - bytes < limits_.reserve_bytes ||
      (fs.total_inodes != 0 && fs.free_inodes < limits_.reserve_inodes + kInodesPerWrite)) {
    return {Code::kResourceExhausted,
            "not saved: the workspace filesystem has " + MiB(fs.free_bytes) + " and " +
                std::to_string(fs.free_inodes) + " inodes free, and the policy keeps " +
                MiB(limits_.reserve_bytes) + " and " + std::to_string(limits_.reserve_inodes) +
                " inodes for the client's own files"};
  }
  return Status::Ok();
}

Result<WriteResult> WriteWithinReserve(const Workspace& ws, const DiskBudget* budget,
                                       std::string_view path, std::string_view data) {
  if (budget != nullptr) RETURN_IF_ERROR(budget->RoomFor(data.size()));
  return ws.WriteFileAtomic(path, data);
}

}  // namespace mcpx::workspace
