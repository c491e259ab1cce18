// A fake cgroupfs in a temp directory for the cgroup unit tests. Plain files stand in for control
// files; the fake emulates the kernel behaviour the code relies on: mkdir creates control files,
// rmdir ignores them, writing a pid to cgroup.procs moves it, subtree_control refuses (EBUSY)
// while the cgroup has processes, cgroup.kill and kill() empty the cgroup.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "jail/cgroup.h"

namespace mcpx::jail::testing {

inline std::string MakeTempDir() {
  std::string tmpl = ::testing::TempDir() + "cgfake-XXXXXX";
  char* dir = ::mkdtemp(tmpl.data());
  return dir == nullptr ? std::string() : std::string(dir);
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FakeCgroupFs : public CgroupFs {
 public:
  enum class Layout { kV2, kV1 };
  FakeCgroupFs(std::string root, Layout layout) : root_(std::move(root)), layout_(layout) {}

  // Knobs for the control files mkdir creates.
  bool has_cgroup_kill = true;
  bool has_swap = true;
  bool has_memory_peak = true;
  std::set<std::string> read_only;  // paths that Writable() and Write() refuse
  std::vector<pid_t> killed;

  bool Writable(const std::string& path) const override { return read_only.count(path) == 0; }

  Status Write(const std::string& path, std::string_view value) override {
    if (read_only.count(path) != 0) return ErrnoStatus(Code::kPermissionDenied, path, EACCES);
    if (!Exists(path)) return ErrnoStatus(Code::kFailedPrecondition, path, ENOENT);
    const std::filesystem::path p(path);
    const std::string dir = p.parent_path().string();
    const std::string file = p.filename().string();
    if (file == "cgroup.procs" || file == "tasks") {
      const pid_t pid = static_cast<pid_t>(std::stol(std::string(value)));
      // v1: a process is in one cgroup per hierarchy; v2: in one cgroup overall.
      std::string scope = root_;
      if (layout_ == Layout::kV1) {
        const std::string rel = path.substr(root_.size() + 1);
        scope += "/" + rel.substr(0, rel.find('/'));
      }
      RemovePid(pid, scope);
      std::ofstream(path, std::ios::app) << pid << "\n";
      return Status::Ok();
    }
    if (file == "cgroup.subtree_control" && !ReadFile(dir + "/cgroup.procs").empty()) {
      return ErrnoStatus(Code::kFailedPrecondition, "cannot write " + path, EBUSY);
    }
    if (file == "cgroup.kill") {
      WriteFile(dir + "/cgroup.procs", "");
      return Status::Ok();
    }
    WriteFile(path, std::string(value));
    return Status::Ok();
  }

  Status Mkdir(const std::string& path) override {
    RETURN_IF_ERROR(CgroupFs::Mkdir(path));
    for (const auto& [name, text] : ControlFiles(path)) WriteFile(path + "/" + name, text);
    return Status::Ok();
  }

  Status Rmdir(const std::string& path) override {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return ErrnoStatus(Code::kNotFound, path, ENOENT);
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.is_directory()) return ErrnoStatus(Code::kFailedPrecondition, path, EBUSY);
    }
    if (!ReadFile(path + "/cgroup.procs").empty()) {
      return ErrnoStatus(Code::kFailedPrecondition, path, EBUSY);
    }
    for (const auto& e : fs::directory_iterator(path, ec)) fs::remove(e.path(), ec);
    return CgroupFs::Rmdir(path);
  }

  Status Kill(pid_t pid, int sig) override {
    killed.push_back(pid);
    RemovePid(pid, root_);
    return Status::Ok();
  }

 private:
  std::vector<std::pair<std::string, std::string>> ControlFiles(const std::string& path) const {
    std::vector<std::pair<std::string, std::string>> f = {{"cgroup.procs", ""}};
    if (layout_ == Layout::kV2) {
      const std::string parent = std::filesystem::path(path).parent_path().string();
      std::string enabled = ReadFile(parent + "/cgroup.subtree_control");
      std::string controllers;
      for (char c : enabled) {
        if (c != '+') controllers += c;
      }
      f.push_back({"cgroup.controllers", controllers});
      f.push_back({"cgroup.subtree_control", ""});
      if (has_cgroup_kill) f.push_back({"cgroup.kill", ""});
      if (controllers.find("memory") != std::string::npos) {
        f.push_back({"memory.max", "max\n"});
        f.push_back({"memory.current", "0\n"});
        f.push_back({"memory.oom.group", "0\n"});
        f.push_back({"memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"});
        if (has_swap) f.push_back({"memory.swap.max", "max\n"});
        if (has_memory_peak) f.push_back({"memory.peak", "0\n"});
      }
      if (controllers.find("pids") != std::string::npos) {
        f.push_back({"pids.max", "max\n"});
        f.push_back({"pids.events", "max 0\n"});
      }
      if (controllers.find("cpu") != std::string::npos) f.push_back({"cpu.max", "max 100000\n"});
      f.push_back({"cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"});
      return f;
    }
    f.push_back({"tasks", ""});
    const std::string rel = path.substr(root_.size() + 1);
    // "cpu,cpuacct" is one hierarchy carrying both controllers.
    std::set<std::string> hier;
    std::istringstream names(rel.substr(0, rel.find('/')));
    for (std::string n; std::getline(names, n, ',');) hier.insert(n);
    if (hier.count("memory") != 0) {
      f.push_back({"memory.limit_in_bytes", "9223372036854771712\n"});
      if (has_swap) f.push_back({"memory.memsw.limit_in_bytes", "9223372036854771712\n"});
      f.push_back({"memory.usage_in_bytes", "0\n"});
      f.push_back({"memory.max_usage_in_bytes", "0\n"});
      f.push_back({"memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"});
    }
    if (hier.count("pids") != 0) {
      f.push_back({"pids.max", "max\n"});
      f.push_back({"pids.events", "max 0\n"});
    }
    if (hier.count("cpu") != 0) {
      f.push_back({"cpu.cfs_period_us", "100000\n"});
      f.push_back({"cpu.cfs_quota_us", "-1\n"});
    }
    if (hier.count("cpuacct") != 0) f.push_back({"cpuacct.usage", "0\n"});
    return f;
  }

  void RemovePid(pid_t pid, const std::string& scope) {
    namespace fs = std::filesystem;
    const std::string needle = std::to_string(pid);
    for (const auto& e : fs::recursive_directory_iterator(scope)) {
      const std::string name = e.path().filename().string();
      if (name != "cgroup.procs" && name != "tasks") continue;
      std::istringstream in(ReadFile(e.path().string()));
      std::string out, line;
      while (std::getline(in, line)) {
        if (!line.empty() && line != needle) out += line + "\n";
      }
      WriteFile(e.path().string(), out);
    }
  }

  std::string root_;
  Layout layout_;
};

}  // namespace mcpx::jail::testing
