#include "jail/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <utility>

#include "jail/cgroup_v1.h"
#include "jail/cgroup_v2.h"
#include "util/io.h"

namespace mcpx::jail {
namespace {

// No hierarchy we can use at all: the report says why, Create() refuses.
class NoCgroupManager final : public CgroupManager {
 public:
  explicit NoCgroupManager(CgroupReport report) : report_(std::move(report)) {}
  CgroupVersion version() const override { return CgroupVersion::kNone; }
  const CgroupReport& report() const override { return report_; }
  Result<std::unique_ptr<Cgroup>> Create(const std::string& name,
                                         const CgroupLimits& limits) override {
    return FailedPrecondition("cgroups are not usable: " + report_.detail);
  }

 private:
  CgroupReport report_;
};

std::unique_ptr<CgroupManager> NoCgroups(std::string detail) {
  CgroupReport r;
  r.detail = std::move(detail);
  r.fix = "limits fall back to rlimits (RLIMIT_AS); mount cgroup2 at /sys/fs/cgroup";
  return std::make_unique<NoCgroupManager>(std::move(r));
}

}  // namespace

std::string_view CgroupVersionName(CgroupVersion version) {
  switch (version) {
    case CgroupVersion::kV1:
      return "v1";
    case CgroupVersion::kV2:
      return "v2";
    case CgroupVersion::kNone:
      break;
  }
  return "none";
}

bool CgroupFs::Exists(const std::string& path) const {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool CgroupFs::Writable(const std::string& path) const { return ::access(path.c_str(), W_OK) == 0; }

Result<std::string> CgroupFs::Read(const std::string& path) const {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(Code::kFailedPrecondition, "cannot read " + path);
  auto text = ReadAll(fd.get());
  if (!text.ok()) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot read " + path, text.status().err());
  }
  return text;
}

Status CgroupFs::Write(const std::string& path, std::string_view value) {
  const std::string what = "cannot write '" + std::string(value) + "' to " + path;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    if (err == EACCES || err == EPERM || err == EROFS) {
      return ErrnoStatus(Code::kPermissionDenied,
                         what + " (not delegated; run `mcp-executor doctor`)", err);
    }
    return ErrnoStatus(Code::kFailedPrecondition, what, err);
  }
  // One write: a cgroup file takes its value in a single write(2).
  const ssize_t n = RetryEintr([&] { return ::write(fd.get(), value.data(), value.size()); });
  if (n < 0) return ErrnoStatus(Code::kFailedPrecondition, what);
  if (static_cast<size_t>(n) != value.size()) return Internal(what + ": short write");
  return Status::Ok();
}

Status CgroupFs::Mkdir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return Status::Ok();
  const int err = errno;
  if (err == EACCES || err == EPERM || err == EROFS) {
    return ErrnoStatus(
        Code::kPermissionDenied,
        "cannot create cgroup " + path + " (not delegated; run `mcp-executor doctor`)", err);
  }
  if (err == EEXIST) return ErrnoStatus(Code::kAlreadyExists, "cgroup " + path + " exists", err);
  return ErrnoStatus(Code::kFailedPrecondition, "cannot create cgroup " + path, err);
}

Status CgroupFs::Rmdir(const std::string& path) {
  if (::rmdir(path.c_str()) == 0) return Status::Ok();
  return ErrnoStatus(errno == ENOENT ? Code::kNotFound : Code::kFailedPrecondition,
                     "cannot remove cgroup " + path);
}

Result<UniqueFd> CgroupFs::OpenDir(const std::string& path) const {
  // Not O_PATH: clone3(CLONE_INTO_CGROUP) rejects O_PATH descriptors.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(Code::kFailedPrecondition, "cannot open cgroup " + path);
  return fd;
}

Status CgroupFs::Kill(pid_t pid, int sig) {
  if (::kill(pid, sig) == 0 || errno == ESRCH) return Status::Ok();
  return ErrnoStatus(Code::kPermissionDenied, "cannot kill pid " + std::to_string(pid));
}

Result<std::vector<ProcCgroupEntry>> ParseProcSelfCgroup(std::string_view text) {
  std::vector<ProcCgroupEntry> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    const size_t c1 = line.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos || c2 + 1 >= line.size() || line[c2 + 1] != '/') {
      return InvalidArgument("malformed /proc/self/cgroup line: '" + std::string(line) + "'");
    }
    out.push_back(
        {std::string(line.substr(c1 + 1, c2 - c1 - 1)), std::string(line.substr(c2 + 1))});
  }
  return out;
}

std::optional<uint64_t> ReadKeyedCounter(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ') {
      continue;
    }
    std::string_view num = line.substr(key.size() + 1);
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec != std::errc() || p == num.data()) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

std::optional<uint64_t> ParseCounter(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::string CpuMaxValue(double cpus) {
  if (!(cpus > 0)) return "max " + std::to_string(kCpuPeriodUs);
  return std::to_string(CpuQuotaUs(cpus)) + " " + std::to_string(kCpuPeriodUs);
}

uint64_t CpuQuotaUs(double cpus) {
  // The kernel refuses quotas under 1 ms.
  const double q = std::round(cpus * static_cast<double>(kCpuPeriodUs));
  return q < 1000.0 ? 1000 : static_cast<uint64_t>(q);
}

Result<std::vector<pid_t>> ReadCgroupPids(const CgroupFs& fs, const std::string& procs_file) {
  ASSIGN_OR_RETURN(std::string text, fs.Read(procs_file));
  std::vector<pid_t> pids;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    if (*p == '\n' || *p == ' ') {
      ++p;
      continue;
    }
    pid_t pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec != std::errc() || pid <= 0) return Internal("malformed " + procs_file);
    pids.push_back(pid);
    p = next;
  }
  return pids;
}

Status KillUntilEmpty(CgroupFs& fs, const std::vector<std::string>& procs_files, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    bool empty = true;
    for (const auto& file : procs_files) {
      auto pids = ReadCgroupPids(fs, file);
      if (!pids.ok()) {
        if (pids.status().err() == ENOENT) continue;  // already removed
        return pids.status();
      }
      for (pid_t pid : *pids) {
        empty = false;
        RETURN_IF_ERROR(fs.Kill(pid, SIGKILL));
      }
    }
    if (empty) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status(Code::kUnavailable,
                "processes are still alive in " + procs_files.front() + " after repeated SIGKILL");
}

Status CheckCgroupName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return InvalidArgument("bad cgroup name '" + name + "'");
  }
  return Status::Ok();
}

Status RemoveCgroupDir(CgroupFs& fs, const std::string& dir) {
  for (int i = 0;; ++i) {
    Status st = fs.Rmdir(dir);
    if (st.ok() || st.err() == ENOENT) return Status::Ok();
    if (st.err() != EBUSY || i >= 500) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::unique_ptr<CgroupManager> CgroupManager::Detect(const std::string& fs_root,
                                                     const std::string& proc_self_cgroup) {
  CgroupDetectOptions opts;
  opts.fs_root = fs_root;
  opts.proc_self_cgroup = proc_self_cgroup;
  return Detect(opts);
}

std::unique_ptr<CgroupManager> CgroupManager::Detect(const CgroupDetectOptions& in) {
  CgroupDetectOptions opts = in;
  if (!opts.fs) opts.fs = std::make_shared<CgroupFs>();
  CgroupFs& fs = *opts.fs;

  auto text = fs.Read(opts.proc_self_cgroup);
  if (!text.ok()) return NoCgroups(text.status().ToString());
  auto entries = ParseProcSelfCgroup(*text);
  if (!entries.ok()) return NoCgroups(entries.status().ToString());

  // Pure v2 has cgroup.controllers at the root; hybrid systems mount cgroup2 at unified/.
  std::string unified;
  bool pure_v2 = false;
  if (fs.Exists(opts.fs_root + "/cgroup.controllers")) {
    unified = opts.fs_root;
    pure_v2 = true;
  } else if (fs.Exists(opts.fs_root + "/unified/cgroup.controllers")) {
    unified = opts.fs_root + "/unified";
  }
  const ProcCgroupEntry* v2_entry = nullptr;
  bool v1_memory = false;
  for (const auto& e : *entries) {
    if (e.controllers.empty()) v2_entry = &e;
    if (IsV1Controller(e.controllers, "memory") &&
        !V1HierarchyDir(fs, opts.fs_root, e.controllers).empty()) {
      v1_memory = true;
    }
  }

  if (!unified.empty() && v2_entry != nullptr) {
    // On a hybrid machine prefer v2 only when it carries the controllers we need.
    if (pure_v2 || !v1_memory || V2HasControllers(fs, unified + v2_entry->path)) {
      return DetectV2(opts, unified, v2_entry->path, pure_v2);
    }
  }
  if (v1_memory) return DetectV1(opts, *entries);
  if (!unified.empty()) {
    return NoCgroups("cgroup2 at " + unified + " but /proc/self/cgroup has no '0::' entry");
  }
  return NoCgroups("no cgroup2 and no cgroup v1 memory hierarchy under " + opts.fs_root);
}

}  // namespace mcpx::jail
