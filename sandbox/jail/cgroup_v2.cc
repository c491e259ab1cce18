#include "jail/cgroup_v2.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>
#include <vector>

namespace mcpx::jail {
namespace {

constexpr int kKillRounds = 2000;  // ~2 s of 1 ms rounds before giving up on a cgroup
constexpr char kDelegateFix[] =
    "start the server in a delegated scope: `systemd-run --user --scope -p Delegate=yes "
    "mcp-executor serve` (or set Delegate=yes for user@.service); until then limits fall back to "
    "rlimits (RLIMIT_AS) and the sandbox's init (CPU rate)";

std::vector<std::string> SplitWords(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\n') ++j;
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

bool Has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string Join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string EnableString(const std::vector<std::string>& controllers) {
  std::string out;
  for (const auto& c : controllers) {
    if (!out.empty()) out += ' ';
    out += '+' + c;
  }
  return out;
}

class V2Cgroup final : public Cgroup {
 public:
  V2Cgroup(std::shared_ptr<CgroupFs> fs, std::string name, std::string path, UniqueFd dir)
      : fs_(std::move(fs)), name_(std::move(name)), path_(std::move(path)), dir_(std::move(dir)) {}
  ~V2Cgroup() override { (void)Destroy(); }

  const std::string& name() const override { return name_; }
  int dir_fd() const override { return dir_.get(); }
  std::vector<std::string> dirs() const override { return {path_}; }

  Status AddProcess(pid_t pid) override {
    return fs_->Write(path_ + "/cgroup.procs", std::to_string(pid));
  }

  Result<CgroupUsage> Usage() const override {
    CgroupUsage u;
    ASSIGN_OR_RETURN(std::string current, fs_->Read(path_ + "/memory.current"));
    u.memory_current_bytes = ParseCounter(current).value_or(0);
    // memory.peak is 5.19+; before that, the best we have is the largest value we saw.
    peak_seen_ = std::max(peak_seen_, u.memory_current_bytes);
    u.memory_peak_bytes = peak_seen_;
    if (auto peak = fs_->Read(path_ + "/memory.peak"); peak.ok()) {
      u.memory_peak_bytes = std::max(u.memory_peak_bytes, ParseCounter(*peak).value_or(0));
    }
    if (auto stat = fs_->Read(path_ + "/cpu.stat"); stat.ok()) {
      u.cpu_usec = ReadKeyedCounter(*stat, "usage_usec").value_or(0);
    }
    if (auto events = fs_->Read(path_ + "/memory.events"); events.ok()) {
      // With memory.oom.group=1 one OOM kills the whole group; count it even if oom_kill lags.
      u.oom_kills = std::max(ReadKeyedCounter(*events, "oom_kill").value_or(0),
                             ReadKeyedCounter(*events, "oom_group_kill").value_or(0));
    }
    if (auto events = fs_->Read(path_ + "/pids.events"); events.ok()) {
      u.pids_limit_hits = ReadKeyedCounter(*events, "max").value_or(0);
    }
    return u;
  }

  Status KillAll() override {
    if (destroyed_) return Status::Ok();
    // cgroup.kill (5.14+) kills the whole subtree atomically, racing no fork.
    if (fs_->Exists(path_ + "/cgroup.kill")) return fs_->Write(path_ + "/cgroup.kill", "1");
    return KillUntilEmpty(*fs_, {path_ + "/cgroup.procs"}, kKillRounds);
  }

  Status Destroy() override {
    if (destroyed_) return Status::Ok();
    if (!fs_->Exists(path_)) {
      destroyed_ = true;
      return Status::Ok();
    }
    RETURN_IF_ERROR(KillAll());
    RETURN_IF_ERROR(KillUntilEmpty(*fs_, {path_ + "/cgroup.procs"}, kKillRounds));
    dir_.reset();
    RETURN_IF_ERROR(RemoveCgroupDir(*fs_, path_));
    destroyed_ = true;
    return Status::Ok();
  }

 private:
  std::shared_ptr<CgroupFs> fs_;
  std::string name_;
  std::string path_;
  UniqueFd dir_;
  bool destroyed_ = false;
  mutable uint64_t peak_seen_ = 0;
};

class V2Manager final : public CgroupManager {
 public:
  V2Manager(std::shared_ptr<CgroupFs> fs, std::string own)
      : fs_(std::move(fs)), own_(std::move(own)) {
    report_.version = CgroupVersion::kV2;
    parent_ = own_ + "/" + kV2SandboxParent;
  }
  ~V2Manager() override {
    // Best effort: fails with EBUSY while sandboxes (ours or another server's) still exist.
    if (set_up_) (void)fs_->Rmdir(parent_);
  }

  CgroupVersion version() const override { return CgroupVersion::kV2; }
  const CgroupReport& report() const override { return report_; }

  void Init(bool setup, bool pure_v2) {
    auto available = fs_->Read(own_ + "/cgroup.controllers");
    const std::vector<std::string> have =
        available.ok() ? SplitWords(*available) : std::vector<std::string>{};
    for (const char* c : {"memory", "pids", "cpu"}) {
      if (Has(have, c)) controllers_.emplace_back(c);
    }
    report_.detail =
        std::string(pure_v2 ? "cgroup v2" : "cgroup v2 (hybrid, beside v1)") + " at " + own_ +
        ", controllers available: " + (have.empty() ? std::string("none") : Join(have, " "));
    if (!Has(controllers_, "memory") || !Has(controllers_, "pids")) {
      report_.detail += " (memory and pids are needed)";
      report_.fix = kDelegateFix;
      return;
    }
    for (const std::string& p : {own_, own_ + "/cgroup.procs", own_ + "/cgroup.subtree_control"}) {
      if (!fs_->Writable(p)) {
        report_.detail +=
            "; " + p + " is not writable by uid " + std::to_string(getuid()) + " (not delegated)";
        report_.fix = kDelegateFix;
        return;
      }
    }
    if (!Has(controllers_, "cpu")) {
      report_.detail += "; cpu is not delegated, so no CPU quota";
      report_.fix =
          "for a CPU quota, delegate cpu too: `systemd-run --user --scope -p "
          "Delegate=yes mcp-executor serve` or Delegate=cpu memory pids in user@.service";
    }
    if (!setup) {
      if (auto others = OtherProcesses(); !others.empty()) {
        report_.detail += "; other processes share " + own_ + " (" + others +
                          "), so enabling controllers would fail with EBUSY";
        report_.fix = kDelegateFix;
        return;
      }
      report_.usable = true;
      report_.base = parent_;
      report_.controllers = controllers_;
      return;
    }
    if (Status st = SetUp(); !st.ok()) {
      report_.detail += "; " + st.ToString();
      report_.fix = kDelegateFix;
      return;
    }
    set_up_ = true;
    report_.usable = true;
    report_.base = parent_;
    report_.controllers = controllers_;
  }

  Result<std::unique_ptr<Cgroup>> Create(const std::string& name,
                                         const CgroupLimits& limits) override {
    if (!report_.usable) {
      return FailedPrecondition("cgroup v2 is not usable: " + report_.detail +
                                "; fix: " + report_.fix);
    }
    RETURN_IF_ERROR(CheckCgroupName(name));
    // Another server sharing our cgroup may have removed the parent when it exited.
    if (!fs_->Exists(parent_)) RETURN_IF_ERROR(EnableParent());
    const std::string path = parent_ + "/" + name;
    RETURN_IF_ERROR(fs_->Mkdir(path));
    RETURN_IF_ERROR(WriteLimits(path, limits));
    auto dir = fs_->OpenDir(path);
    if (!dir.ok()) {
      (void)fs_->Rmdir(path);
      return dir.status();
    }
    return std::unique_ptr<Cgroup>(std::make_unique<V2Cgroup>(fs_, name, path, std::move(*dir)));
  }

 private:
  std::string OtherProcesses() const {
    auto pids = ReadCgroupPids(*fs_, own_ + "/cgroup.procs");
    if (!pids.ok()) return "";
    std::string out;
    for (pid_t p : *pids) {
      if (p == getpid()) continue;
      if (!out.empty()) out += ' ';
      out += std::to_string(p);
    }
    return out;
  }

  Status SetUp() {
    const std::string leaf = own_ + "/" + kV2ServerLeaf;
    if (Status st = fs_->Mkdir(leaf); !st.ok() && st.code() != Code::kAlreadyExists) return st;
    // "No internal processes": controllers can be enabled for children only once <own> itself
    // holds no process, so the server moves into a leaf first.
    RETURN_IF_ERROR(fs_->Write(leaf + "/cgroup.procs", std::to_string(getpid())));
    Status st = fs_->Write(own_ + "/cgroup.subtree_control", EnableString(controllers_));
    if (!st.ok()) {
      // Undo the move so the failed attempt leaves things as they were.
      (void)fs_->Write(own_ + "/cgroup.procs", std::to_string(getpid()));
      (void)fs_->Rmdir(leaf);
      if (st.err() == EBUSY) {
        return st.Annotate("cannot enable controllers in " + own_ +
                           ": other processes share our cgroup (" + OtherProcesses() + ")");
      }
      return st;
    }
    return EnableParent();
  }

  Status EnableParent() {
    if (Status st = fs_->Mkdir(parent_); !st.ok() && st.code() != Code::kAlreadyExists) return st;
    return fs_->Write(parent_ + "/cgroup.subtree_control", EnableString(controllers_));
  }

  Status WriteLimits(const std::string& path, const CgroupLimits& limits) {
    Status st = [&]() -> Status {
      RETURN_IF_ERROR(fs_->Write(path + "/memory.max", limits.memory_bytes == 0
                                                           ? std::string("max")
                                                           : std::to_string(limits.memory_bytes)));
      // Absent without swap accounting; then there is no swap to limit.
      if (fs_->Exists(path + "/memory.swap.max")) {
        RETURN_IF_ERROR(fs_->Write(path + "/memory.swap.max", "0"));
      }
      // One OOM kills the whole sandbox instead of leaving a half-dead interpreter.
      if (fs_->Exists(path + "/memory.oom.group")) {
        RETURN_IF_ERROR(fs_->Write(path + "/memory.oom.group", "1"));
      }
      RETURN_IF_ERROR(fs_->Write(
          path + "/pids.max", limits.pids == 0 ? std::string("max") : std::to_string(limits.pids)));
      if (Has(controllers_, "cpu")) {
        RETURN_IF_ERROR(fs_->Write(path + "/cpu.max", CpuMaxValue(limits.cpus)));
      }
      return Status::Ok();
    }();
    if (!st.ok()) (void)fs_->Rmdir(path);
    return st;
  }

  std::shared_ptr<CgroupFs> fs_;
  std::string own_;
  std::string parent_;
  std::vector<std::string> controllers_;
  CgroupReport report_;
  bool set_up_ = false;
};

}  // namespace

bool V2HasControllers(const CgroupFs& fs, const std::string& dir) {
  auto text = fs.Read(dir + "/cgroup.controllers");
  if (!text.ok()) return false;
  const auto words = SplitWords(*text);
  return Has(words, "memory") && Has(words, "pids");
}

std::unique_ptr<CgroupManager> DetectV2(const CgroupDetectOptions& opts, const std::string& unified,
                                        const std::string& own_path, bool pure_v2) {
  std::string own = own_path == "/" ? unified : unified + own_path;
  // Detect() already ran in this process and moved us into the leaf.
  const std::string leaf_suffix = std::string("/") + kV2ServerLeaf;
  if (own.size() > leaf_suffix.size() &&
      own.compare(own.size() - leaf_suffix.size(), leaf_suffix.size(), leaf_suffix) == 0) {
    own.resize(own.size() - leaf_suffix.size());
  }
  auto m = std::make_unique<V2Manager>(opts.fs, own);
  m->Init(opts.setup, pure_v2);
  return m;
}

}  // namespace mcpx::jail
