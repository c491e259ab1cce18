// `mcp-executor doctor`: which isolation layers this machine supports, which will be active, and
// the fix for each missing one. The probing lives in sandbox/jail (support.h, cgroup.h); this file
// only decides what is required and presents it.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/doctor_packages.h"
#include "cli/output.h"
#include "jail/cgroup.h"
#include "jail/policy.h"
#include "jail/support.h"
#include "jail/userns.h"
#include "session/server_policy.h"
#include "util/status.h"
#include "util/text.h"
#include "util/unique_fd.h"
#include "util/units.h"
#include "workspace/disk_budget.h"

namespace mcpx::cli {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr int kPythonTimeoutMs = 15000;

struct Row {
  int number = 0;  // the isolation layer's number in the table; 0 for kernel features
  std::string name;
  bool supported = false;
  bool required = true;
  std::string detail;
  std::string fix;
};

std::string ErrText(int err) { return err < 0 ? "not reached" : ErrnoName(err); }

std::string UserNsFix(const jail::MachineSupport& s) {
  if (!s.userns_in_kernel) return "the kernel lacks CONFIG_USER_NS; use a kernel with it";
  if (s.apparmor_restrict_unprivileged.value_or(0) == 1 && s.euid != 0) {
    return "Ubuntu 23.10+ restricts user namespaces through AppArmor: `sudo sysctl "
           "kernel.apparmor_restrict_unprivileged_userns=0` (persist in /etc/sysctl.d), or load "
           "an AppArmor profile for mcp-executor that allows `userns,`";
  }
  if (s.unprivileged_userns_clone.value_or(1) == 0 && s.euid != 0) {
    return "`sudo sysctl kernel.unprivileged_userns_clone=1` (persist in /etc/sysctl.d)";
  }
  if (s.max_user_namespaces.value_or(1) == 0) {
    return "`sudo sysctl user.max_user_namespaces=15000` (persist in /etc/sysctl.d)";
  }
  return "inside a container? its seccomp profile may block unshare: allow unshare/clone with "
         "namespace flags (e.g. Docker --security-opt seccomp=unconfined), or run on the host";
}

// The host uid that sandboxed code's files will belong to (see jail/userns.h PlanIdMap).
std::string HostIdentity(const std::string& workspace) {
  const uid_t uid = ::geteuid();
  if (uid != 0) return "host uid " + std::to_string(uid) + " (yours)";
  struct stat st {};
  if (::stat(workspace.c_str(), &st) == 0 && st.st_uid != 0) {
    return "host uid " + std::to_string(st.st_uid) + " (owner of the workspace " + workspace + ")";
  }
  return "host uid " + std::to_string(jail::kDedicatedHostId) +
         " (dedicated; the root-owned workspace " + workspace + " is chowned to it)";
}

// The rlimits row, with or without a cgroup: what a sandbox may charge to the server's user.
constexpr const char* kHostUserBudgets =
    "SIGPENDING, MSGQUEUE, MEMLOCK and its user namespace's inotify/fanotify limits bound what "
    "it charges to the host user";

std::vector<Row> Layers(const jail::MachineSupport& s, const jail::CgroupReport& cg,
                        const std::string& identity) {
  std::vector<Row> rows;
  const auto& ns = s.ns;
  const std::string probe_error = ns.error.empty() ? "" : " (" + ns.error + ")";

  Row user{1, "user namespace", s.userns_works(), true, "", ""};
  if (user.supported) {
    user.detail = "code runs as uid " + std::to_string(jail::kSandboxUid) + " inside, " + identity;
  } else {
    user.detail = ns.user != 0 ? "unshare(CLONE_NEWUSER): " + ErrText(ns.user)
                               : "writing uid_map/gid_map: " + ErrText(ns.uid_map);
    user.detail += probe_error;
    user.fix = UserNsFix(s);
  }
  rows.push_back(user);

  Row mnt{2, "mount namespace + pivot_root", s.mountns_works(), true, "", ""};
  if (mnt.supported) {
    mnt.detail = "minimal read-only root, old root detached";
  } else if (!s.userns_works()) {
    mnt.detail = "needs the user namespace (layer 1)";
  } else {
    mnt.detail = ns.mount != 0
                     ? "unshare(CLONE_NEWNS): " + ErrText(ns.mount)
                     : "mount(MS_PRIVATE) in the new namespace: " + ErrText(ns.mount_private) +
                           " (no CAP_SYS_ADMIN there)";
    mnt.fix = UserNsFix(s);
  }
  rows.push_back(mnt);

  auto ns_row = [&](int number, std::string name, bool ok, std::string what, int err) {
    Row r{number, std::move(name), ok && s.userns_works(), true, "", ""};
    if (r.supported) {
      r.detail = std::move(what);
    } else if (!s.userns_works()) {
      r.detail = "needs the user namespace (layer 1)";
    } else {
      r.detail = "unshare: " + ErrText(err);
      r.fix =
          "the kernel lacks this namespace type (CONFIG_*_NS) or a seccomp/LSM policy blocks it";
    }
    return r;
  };
  rows.push_back(
      ns_row(3, "PID namespace", ns.pid == 0, "kernel is PID 1 of its own namespace", ns.pid));
  rows.push_back(ns_row(4, "net namespace", ns.net == 0, "loopback only, no network", ns.net));
  const int ipc_err = ns.ipc != 0 ? ns.ipc : (ns.uts != 0 ? ns.uts : ns.cgroup);
  rows.push_back(ns_row(5, "IPC + UTS + cgroup namespaces",
                        ns.ipc == 0 && ns.uts == 0 && ns.cgroup == 0, "all three", ipc_err));

  rows.push_back({6, "rlimits", true, true,
                  cg.usable
                      ? std::string("NOFILE, FSIZE, CORE=0, NPROC; a sandbox reaching the process "
                                    "limit is stopped by its init; ") +
                            kHostUserBudgets
                      : std::string("NOFILE, FSIZE, CORE=0, AS in place of the cgroup memory "
                                    "limit, NPROC in place of pids (a sandbox reaching it is "
                                    "stopped by its init); ") +
                            kHostUserBudgets,
                  ""});

  Row cgroup{7, "cgroup limits", cg.usable, false, "", cg.usable ? "" : cg.fix};
  cgroup.detail = cg.detail;
  if (cg.usable) {
    std::string list;
    for (const auto& c : cg.controllers) list += (list.empty() ? "" : " ") + c;
    cgroup.detail += "; limits on " + list + "; sandboxes under " + cg.base;
  }
  if (!cg.usable ||
      std::find(cg.controllers.begin(), cg.controllers.end(), "cpu") == cg.controllers.end()) {
    cgroup.detail +=
        "; no CPU quota: each sandbox's init meters its CPU time and stops it above the "
        "policy's cpus (100 ms ticks)";
  }
  // A usable setup can still lack cpu: the manager names the fix without failing.
  if (cg.usable && !cg.fix.empty()) cgroup.fix = cg.fix;
  rows.push_back(cgroup);

  const bool capbset = ::prctl(PR_CAPBSET_READ, 0, 0, 0, 0) >= 0;
  rows.push_back({8, "capabilities dropped", capbset && s.cap_ambient, true,
                  "bounding, ambient, inheritable, effective, permitted all empty",
                  capbset && s.cap_ambient ? "" : "kernel older than 4.3 (no ambient set)"});
  rows.push_back({9, "no_new_privs", s.no_new_privs, true,
                  "plus setsid, no controlling terminal, only the kernel's own fds",
                  s.no_new_privs ? "" : "kernel older than 3.5"});

  Row landlock{10, "Landlock", s.landlock_abi > 0, false, "", ""};
  if (landlock.supported) {
    landlock.detail = "ABI " + std::to_string(s.landlock_abi);
  } else {
    landlock.detail = "landlock_create_ruleset: " + ErrText(s.landlock_errno);
    landlock.fix = s.landlock_errno == EOPNOTSUPP
                       ? "built but disabled: add landlock to the kernel's lsm= boot parameter"
                       : "needs Linux 5.13+ with CONFIG_SECURITY_LANDLOCK";
  }
  rows.push_back(landlock);

  Row seccomp{11, "seccomp", s.seccomp_filter, true, "", ""};
  seccomp.detail = s.seccomp_filter ? "filter mode, applied last" : "no SECCOMP_MODE_FILTER";
  if (s.seccomp_mode == 2) seccomp.detail += "; this process is already filtered (stacked)";
  if (!s.seccomp_filter) seccomp.fix = "needs a kernel with CONFIG_SECCOMP_FILTER";
  rows.push_back(seccomp);

  rows.push_back({0, "openat2", s.openat2, true, "workspace path confinement",
                  s.openat2 ? "" : "needs Linux 5.6+"});
  rows.push_back({0, "pidfd", s.pidfd, true, "child exits in the event loop",
                  s.pidfd ? "" : "needs Linux 5.3+"});
  rows.push_back({0, "clone3", s.clone3, false, "CLONE_INTO_CGROUP (race-free cgroup join)",
                  s.clone3 ? "" : "needs Linux 5.7+; sandboxes join their cgroup after fork"});
  rows.push_back({0, "overlayfs", s.overlayfs, false,
                  "package overlay (install_package, not built yet)",
                  s.overlayfs ? "" : "`modprobe overlay` (not listed in /proc/filesystems)"});
  return rows;
}

// The workspace disk budget (docs/SECURITY.md, "Limits"): mechanism, limits, free space.
struct DiskRow {
  std::string mechanism;  // "accounting ...", or "unknown" when the policy cannot be loaded
  std::string limits;
  std::string free;
  std::string quota;  // whether a project quota could be used instead
};

DiskRow WorkspaceDisk(const Options& opts) {
  DiskRow row;
  auto policy = session::LoadServerPolicy(opts.policy, opts.policies_dir());
  if (policy.ok()) {
    const auto& l = (*policy)->settings;
    row.mechanism =
        "accounting (tree scan + fstatvfs every 250 ms while a cell runs; the cell "
        "is killed by name)";
    row.limits = MiB(l.workspace_bytes) + " and " + std::to_string(l.workspace_inodes) +
                 " files for all sandboxes together; " + MiB(l.workspace_reserve_bytes) + " and " +
                 std::to_string(l.workspace_reserve_inodes) +
                 " inodes kept free for the client's writes (policy " + (*policy)->name() + ")";
  } else {
    row.mechanism = "unknown";
    row.limits = "policy '" + opts.policy + "' does not load: " + policy.status().ToString();
  }
  UniqueFd fd(::open(opts.workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    row.free = "workspace " + opts.workspace + " not created yet";
    return row;
  }
  if (auto fs = workspace::MeasureFs(fd.get()); fs.ok()) {
    row.free = std::to_string(fs->free_bytes >> 20) + " of " +
               std::to_string(fs->total_bytes >> 20) + " MiB free";
    if (fs->total_inodes != 0) {
      row.free += ", " + std::to_string(fs->free_inodes) + " of " +
                  std::to_string(fs->total_inodes) + " inodes free";
    }
  } else {
    row.free = fs.status().ToString();
  }
  row.quota = workspace::ProbeQuotaSupport(fd.get()).detail;
  return row;
}

std::string YesNo(bool b) { return b ? "yes" : "no"; }

std::string StatusWord(const Row& r) {
  if (r.supported) return "active";
  return r.required ? "MISSING" : "degraded";
}

}  // namespace

int RunDoctor(const Options& opts) {
  const jail::MachineSupport s = jail::ProbeMachineSupport();
  jail::CgroupDetectOptions cg_opts;
  cg_opts.setup = false;  // look only: doctor must not move itself or create cgroups
  const auto cgroups = jail::CgroupManager::Detect(cg_opts);
  const jail::CgroupReport& cg = cgroups->report();
  const std::string identity = HostIdentity(opts.workspace);
  const std::vector<Row> rows = Layers(s, cg, identity);
  const jail::PythonProbe py =
      jail::ProbePython(kPython, {"numpy", "pandas", "matplotlib"}, kPythonTimeoutMs);

  const DiskRow disk = WorkspaceDisk(opts);
  const PackagesReport packages = ProbePackages(opts);

  struct stat st {};
  const bool state_exists = ::stat(opts.state_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  const bool state_writable = state_exists && ::access(opts.state_dir.c_str(), W_OK) == 0;

  bool ok = py.ran;
  for (const auto& r : rows) ok = ok && (r.supported || !r.required);

  if (opts.json) {
    nlohmann::json j;
    j["ok"] = ok;
    j["kernel"] = s.kernel_release;
    j["uid"] = s.uid;
    j["euid"] = s.euid;
    j["root"] = s.euid == 0;
    j["sandbox_identity"] = "uid " + std::to_string(jail::kSandboxUid) + " inside, " + identity;
    auto& layers = j["layers"] = nlohmann::json::array();
    auto& features = j["kernel_features"] = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json e = {{"name", r.name},
                          {"supported", r.supported},
                          {"active", r.supported},
                          {"required", r.required},
                          {"status", StatusWord(r)},
                          {"detail", r.detail},
                          {"fix", r.fix.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.fix)}};
      if (r.number > 0) {
        e["layer"] = r.number;
        layers.push_back(std::move(e));
      } else {
        features.push_back(std::move(e));
      }
    }
    j["cgroup"] = {{"version", jail::CgroupVersionName(cg.version)},
                   {"usable", cg.usable},
                   {"base", cg.base},
                   {"controllers", cg.controllers},
                   {"detail", cg.detail},
                   {"fix", cg.fix}};
    j["userns_sysctls"] = {
        {"max_user_namespaces",
         s.max_user_namespaces ? nlohmann::json(*s.max_user_namespaces) : nlohmann::json(nullptr)},
        {"unprivileged_userns_clone", s.unprivileged_userns_clone
                                          ? nlohmann::json(*s.unprivileged_userns_clone)
                                          : nlohmann::json(nullptr)},
        {"apparmor_restrict_unprivileged_userns",
         s.apparmor_restrict_unprivileged ? nlohmann::json(*s.apparmor_restrict_unprivileged)
                                          : nlohmann::json(nullptr)}};
    auto& mods = j["python"]["modules"] = nlohmann::json::array();
    j["python"]["path"] = kPython;
    j["python"]["runs"] = py.ran;
    j["python"]["version"] = py.version;
    j["python"]["error"] = py.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(py.error);
    for (const auto& m : py.modules) {
      mods.push_back({{"name", m.name}, {"ok", m.ok}, {"detail", m.detail}});
    }
    j["workspace_disk"] = {{"path", opts.workspace},
                           {"mechanism", disk.mechanism},
                           {"limits", disk.limits},
                           {"free", disk.free},
                           {"project_quota", disk.quota}};
    j["state_dir"] = {
        {"path", opts.state_dir}, {"exists", state_exists}, {"writable", state_writable}};
    j["packages"] = PackagesReportToJson(packages);
    WriteStdout(j.dump(2) + "\n");
    return ok ? 0 : 1;
  }

  std::string out;
  out += "mcp-executor doctor\n";
  out += "  kernel " + s.kernel_release + ", running as " +
         (s.euid == 0 ? std::string("root") : "uid " + std::to_string(s.euid)) + "\n";
  out += "  sandboxed code: uid " + std::to_string(jail::kSandboxUid) + " inside, " + identity +
         "\n\n";
  out += "  #  " + PadRight("layer", 31) + PadRight("supported", 11) + PadRight("status", 10) +
         "detail\n";
  bool features_header = false;
  for (const auto& r : rows) {
    if (r.number == 0 && !features_header) {
      out += "\n     " + PadRight("kernel feature", 31) + PadRight("supported", 11) +
             PadRight("status", 10) + "used for\n";
      features_header = true;
    }
    out += r.number > 0
               ? PadRight(" " + std::string(r.number < 10 ? " " : "") + std::to_string(r.number), 5)
               : std::string(5, ' ');
    out += PadRight(r.name, 31) + PadRight(YesNo(r.supported), 11) + PadRight(StatusWord(r), 10) +
           r.detail + "\n";
    if (!r.fix.empty()) out += std::string(36, ' ') + "fix: " + r.fix + "\n";
  }
  out += "\n  python " + std::string(kPython) + ": ";
  if (py.ran) {
    out += py.version;
    for (const auto& m : py.modules) {
      out += ", " + m.name + " " +
             (m.ok ? (m.detail.empty() ? "ok" : m.detail) : "FAILED (" + m.detail + ")");
    }
  } else {
    out += "MISSING (" + py.error + ")";
  }
  out += "\n  state dir " + opts.state_dir + ": " +
         (state_writable ? "writable"
          : state_exists ? "NOT writable"
                         : "not created yet") +
         "\n";
  out += "  workspace disk budget: " + disk.mechanism + "\n    limits: " + disk.limits +
         "\n    filesystem of " + opts.workspace + ": " + disk.free +
         (disk.quota.empty() ? "" : "\n    project quota: " + disk.quota) + "\n";
  out += PackagesReportText(packages);
  out += ok ? "\n  every required layer is available\n"
            : "\n  some required layers are missing (see fix: lines above)\n";
  WriteStdout(out);
  return ok ? 0 : 1;
}

}  // namespace mcpx::cli
