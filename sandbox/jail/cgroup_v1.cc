#include "jail/cgroup_v1.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

namespace mcpx::jail {
namespace {

constexpr int kKillRounds = 2000;  // ~2 s of 1 ms rounds before giving up on a cgroup
constexpr const char* kControllers[] = {"memory", "pids", "cpu", "cpuacct"};

// controller name -> our directory in its hierarchy (cpu and cpuacct may share one).
using DirMap = std::map<std::string, std::string>;

std::vector<std::string> UniqueDirs(const DirMap& dirs) {
  std::vector<std::string> out;
  for (const auto& [c, d] : dirs) {
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

std::vector<std::string> ProcsFiles(const DirMap& dirs) {
  std::vector<std::string> out;
  for (const auto& d : UniqueDirs(dirs)) out.push_back(d + "/cgroup.procs");
  return out;
}

class V1Cgroup final : public Cgroup {
 public:
  V1Cgroup(std::shared_ptr<CgroupFs> fs, std::string name, DirMap dirs)
      : fs_(std::move(fs)), name_(std::move(name)), dirs_(std::move(dirs)) {}
  ~V1Cgroup() override { (void)Destroy(); }

  const std::string& name() const override { return name_; }
  int dir_fd() const override { return -1; }
  std::vector<std::string> dirs() const override { return UniqueDirs(dirs_); }

  Status AddProcess(pid_t pid) override {
    for (const auto& d : UniqueDirs(dirs_)) {
      RETURN_IF_ERROR(fs_->Write(d + "/cgroup.procs", std::to_string(pid)));
    }
    return Status::Ok();
  }

  Result<CgroupUsage> Usage() const override {
    CgroupUsage u;
    const std::string& mem = dirs_.at("memory");
    ASSIGN_OR_RETURN(std::string current, fs_->Read(mem + "/memory.usage_in_bytes"));
    u.memory_current_bytes = ParseCounter(current).value_or(0);
    if (auto peak = fs_->Read(mem + "/memory.max_usage_in_bytes"); peak.ok()) {
      u.memory_peak_bytes = ParseCounter(*peak).value_or(0);
    }
    u.memory_peak_bytes = std::max(u.memory_peak_bytes, u.memory_current_bytes);
    if (auto oom = fs_->Read(mem + "/memory.oom_control"); oom.ok()) {
      u.oom_kills = ReadKeyedCounter(*oom, "oom_kill").value_or(0);
    }
    if (auto it = dirs_.find("cpuacct"); it != dirs_.end()) {
      if (auto ns = fs_->Read(it->second + "/cpuacct.usage"); ns.ok()) {
        u.cpu_usec = ParseCounter(*ns).value_or(0) / 1000;
      }
    }
    if (auto it = dirs_.find("pids"); it != dirs_.end()) {
      if (auto events = fs_->Read(it->second + "/pids.events"); events.ok()) {
        u.pids_limit_hits = ReadKeyedCounter(*events, "max").value_or(0);
      }
    }
    return u;
  }

  Status KillAll() override {
    if (destroyed_) return Status::Ok();
    return KillUntilEmpty(*fs_, ProcsFiles(dirs_), kKillRounds);
  }

  Status Destroy() override {
    if (destroyed_) return Status::Ok();
    RETURN_IF_ERROR(KillAll());
    for (const auto& d : UniqueDirs(dirs_)) RETURN_IF_ERROR(RemoveCgroupDir(*fs_, d));
    destroyed_ = true;
    return Status::Ok();
  }

 private:
  std::shared_ptr<CgroupFs> fs_;
  std::string name_;
  DirMap dirs_;
  bool destroyed_ = false;
};

class V1Manager final : public CgroupManager {
 public:
  V1Manager(std::shared_ptr<CgroupFs> fs, DirMap own) : fs_(std::move(fs)), own_(std::move(own)) {
    report_.version = CgroupVersion::kV1;
    for (const auto& [c, d] : own_) parents_[c] = d + "/mcpx-" + std::to_string(getpid());
  }
  ~V1Manager() override {
    // Best effort: fails with EBUSY while sandboxes still exist.
    for (const auto& d : created_) (void)fs_->Rmdir(d);
  }

  CgroupVersion version() const override { return CgroupVersion::kV1; }
  const CgroupReport& report() const override { return report_; }

  void Init(bool setup) {
    std::string found;
    for (const char* c : kControllers) {
      if (own_.count(c) == 0) continue;
      report_.controllers.emplace_back(c);
      found += found.empty() ? "" : " ";
      found += c;
    }
    report_.detail = "cgroup v1, controllers mounted: " + found;
    static constexpr char kFix[] =
        "cgroup v1 needs root: run the server as root or on a cgroup v2 system with delegation; "
        "until then limits fall back to rlimits (RLIMIT_AS) and the sandbox's init (CPU rate)";
    if (own_.count("memory") == 0 || own_.count("pids") == 0) {
      report_.controllers.clear();
      report_.detail += " (memory and pids are needed)";
      report_.fix = kFix;
      return;
    }
    for (const auto& d : UniqueDirs(own_)) {
      if (!fs_->Writable(d) || !fs_->Writable(d + "/cgroup.procs")) {
        report_.controllers.clear();
        report_.detail += "; " + d + " is not writable by uid " + std::to_string(getuid());
        report_.fix = kFix;
        return;
      }
    }
    if (own_.count("cpu") == 0) report_.detail += "; no cpu hierarchy, so no CPU quota";
    report_.base = parents_.at("memory");
    if (setup) {
      RemoveStale();
      if (Status st = SetUp(); !st.ok()) {
        report_.controllers.clear();
        report_.detail += "; " + st.ToString();
        report_.fix = kFix;
        return;
      }
    }
    report_.usable = true;
  }

  Result<std::unique_ptr<Cgroup>> Create(const std::string& name,
                                         const CgroupLimits& limits) override {
    if (!report_.usable) {
      return FailedPrecondition("cgroup v1 is not usable: " + report_.detail +
                                "; fix: " + report_.fix);
    }
    RETURN_IF_ERROR(CheckCgroupName(name));
    DirMap dirs;
    for (const auto& [c, d] : parents_) dirs[c] = d + "/" + name;
    std::vector<std::string> made;
    Status st = [&]() -> Status {
      for (const auto& d : UniqueDirs(dirs)) {
        RETURN_IF_ERROR(fs_->Mkdir(d));
        made.push_back(d);
      }
      return WriteLimits(dirs, limits);
    }();
    if (!st.ok()) {
      for (const auto& d : made) (void)fs_->Rmdir(d);
      return st;
    }
    return std::unique_ptr<Cgroup>(std::make_unique<V1Cgroup>(fs_, name, std::move(dirs)));
  }

 private:
  // A server that was SIGKILLed cannot remove its mcpx-<pid> folders. They hold no process (the
  // sandboxes died with it: PR_SET_PDEATHSIG), so the next server removes those of dead pids.
  void RemoveStale() {
    namespace fs = std::filesystem;
    for (const auto& d : UniqueDirs(own_)) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(d, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("mcpx-", 0) != 0 || !e.is_directory(ec)) continue;
        const std::string digits = name.substr(5);
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
            digits.size() > 9) {
          continue;
        }
        const auto pid = static_cast<pid_t>(std::stol(digits));
        if (pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH) continue;
        for (const auto& child : fs::directory_iterator(e.path(), ec)) {
          if (child.is_directory(ec)) (void)fs_->Rmdir(child.path().string());
        }
        if (fs_->Rmdir(e.path().string()).ok()) {
          spdlog::info("removed stale cgroup {} of a server (pid {}) that is gone",
                       e.path().string(), pid);
        }
      }
    }
  }

  Status SetUp() {
    for (const auto& d : UniqueDirs(parents_)) {
      Status st = fs_->Mkdir(d);
      if (st.ok()) {
        created_.push_back(d);
      } else if (st.code() != Code::kAlreadyExists) {
        return st;
      }
    }
    return Status::Ok();
  }

  Status WriteLimits(const DirMap& dirs, const CgroupLimits& limits) {
    const std::string& mem = dirs.at("memory");
    if (limits.memory_bytes != 0) {
      const std::string bytes = std::to_string(limits.memory_bytes);
      // memsw (memory + swap) must not be below the memory limit, so it goes second; equal
      // values mean no swap at all. Absent when swap accounting is off.
      RETURN_IF_ERROR(fs_->Write(mem + "/memory.limit_in_bytes", bytes));
      if (fs_->Exists(mem + "/memory.memsw.limit_in_bytes")) {
        RETURN_IF_ERROR(fs_->Write(mem + "/memory.memsw.limit_in_bytes", bytes));
      }
    }
    RETURN_IF_ERROR(fs_->Write(dirs.at("pids") + "/pids.max", limits.pids == 0
                                                                  ? std::string("max")
                                                                  : std::to_string(limits.pids)));
    if (auto it = dirs.find("cpu"); it != dirs.end() && limits.cpus > 0) {
      RETURN_IF_ERROR(fs_->Write(it->second + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs)));
      RETURN_IF_ERROR(
          fs_->Write(it->second + "/cpu.cfs_quota_us", std::to_string(CpuQuotaUs(limits.cpus))));
    }
    return Status::Ok();
  }

  std::shared_ptr<CgroupFs> fs_;
  DirMap own_;      // our cgroup in each hierarchy
  DirMap parents_;  // own_/mcpx-<pid>
  std::vector<std::string> created_;
  CgroupReport report_;
};

}  // namespace

bool IsV1Controller(std::string_view controllers, std::string_view name) {
  while (!controllers.empty()) {
    const size_t comma = controllers.find(',');
    if (controllers.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    controllers.remove_prefix(comma + 1);
  }
  return false;
}

std::string V1HierarchyDir(const CgroupFs& fs, const std::string& fs_root,
                           std::string_view controllers) {
  if (controllers.empty() || controllers.substr(0, 5) == "name=") return "";
  const std::string joint = fs_root + "/" + std::string(controllers);
  if (fs.Exists(joint + "/cgroup.procs")) return joint;
  const std::string first =
      fs_root + "/" + std::string(controllers.substr(0, controllers.find(',')));
  if (fs.Exists(first + "/cgroup.procs")) return first;
  return "";
}

std::unique_ptr<CgroupManager> DetectV1(const CgroupDetectOptions& opts,
                                        const std::vector<ProcCgroupEntry>& entries) {
  DirMap own;
  for (const auto& e : entries) {
    const std::string mount = V1HierarchyDir(*opts.fs, opts.fs_root, e.controllers);
    if (mount.empty()) continue;
    const std::string dir = e.path == "/" ? mount : mount + e.path;
    if (!opts.fs->Exists(dir)) continue;  // e.g. a bind mount of a subtree; not ours to guess
    for (const char* c : kControllers) {
      if (IsV1Controller(e.controllers, c)) own[c] = dir;
    }
  }
  auto m = std::make_unique<V1Manager>(opts.fs, std::move(own));
  m->Init(opts.setup);
  return m;
}

}  // namespace mcpx::jail
