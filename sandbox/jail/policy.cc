#include "jail/policy.h"

#include <seccomp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "jail/seccomp_compiler.h"

namespace mcpx::jail {
namespace {

using nlohmann::json;

std::string Field(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

std::string Item(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

// A short rendering of a bad value for error messages.
std::string Got(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return "got " + s;
}

Status Error(const std::string& path, const std::string& message) {
  return InvalidArgument((path.empty() ? std::string("(top level)") : path) + ": " + message);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Objects must be objects, and every key must be known: a typo must not silently fall back to a
// default ("limits.memroy_mb: unknown field").
Status CheckObject(const json& v, const std::string& path,
                   std::initializer_list<std::string_view> known) {
  if (!v.is_object()) return Error(path, "must be an object, " + Got(v));
  for (const auto& [key, value] : v.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = "unknown field";
    for (std::string_view k : known) {
      if (EditDistance(key, k) <= 2) {
        message += " (did you mean '" + std::string(k) + "'?)";
        break;
      }
    }
    return Error(Field(path, key), message);
  }
  return Status::Ok();
}

Result<uint64_t> ReadUint(const json& v, const std::string& path, uint64_t min, uint64_t max,
                          std::string_view unit = "") {
  const bool integer = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  if (!integer || (min > 0 && v.get<uint64_t>() == 0)) {
    return Error(path,
                 std::string(min > 0 ? "must be a positive integer" : "must be an integer >= 0") +
                     ", " + Got(v));
  }
  const auto n = v.get<uint64_t>();
  if (n < min || n > max) {
    std::string u = unit.empty() ? "" : " " + std::string(unit);
    return Error(path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           u + ", " + Got(v));
  }
  return n;
}

Result<std::string> ReadString(const json& v, const std::string& path, bool allow_empty = false) {
  if (!v.is_string()) return Error(path, "must be a string, " + Got(v));
  auto s = v.get<std::string>();
  if (!allow_empty && s.empty()) return Error(path, "must not be empty");
  return s;
}

Result<bool> ReadBool(const json& v, const std::string& path) {
  if (!v.is_boolean()) return Error(path, "must be true or false, " + Got(v));
  return v.get<bool>();
}

Result<std::vector<std::string>> ReadStringList(const json& v, const std::string& path) {
  if (!v.is_array()) return Error(path, "must be an array of strings, " + Got(v));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    ASSIGN_OR_RETURN(std::string s, ReadString(v[i], Item(path, i)));
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Seccomp (OCI runtime-spec config-linux.md).

constexpr std::string_view kActions[] = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE",        "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG"};
constexpr std::string_view kOps[] = {"SCMP_CMP_NE",       "SCMP_CMP_LT", "SCMP_CMP_LE",
                                     "SCMP_CMP_EQ",       "SCMP_CMP_GE", "SCMP_CMP_GT",
                                     "SCMP_CMP_MASKED_EQ"};
constexpr std::string_view kFlags[] = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"};
constexpr int kMaxErrno = 4095;
constexpr unsigned kMaxSyscallArgs = 6;

template <size_t N>
bool OneOf(const std::string& s, const std::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

Result<std::string> ReadAction(const json& v, const std::string& path) {
  ASSIGN_OR_RETURN(std::string a, ReadString(v, path));
  if (a == "SCMP_ACT_NOTIFY") {
    return Error(path,
                 "SCMP_ACT_NOTIFY needs a supervisor listening on a notify fd; the jail has "
                 "none");
  }
  if (!OneOf(a, kActions)) return Error(path, "unknown action '" + a + "'");
  return a;
}

bool TakesErrno(const std::string& action) {
  return action == "SCMP_ACT_ERRNO" || action == "SCMP_ACT_TRACE";
}

uint32_t ArchTokenOf(std::string_view oci_name) {
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  if (oci_name.substr(0, kPrefix.size()) != kPrefix || oci_name.size() == kPrefix.size()) return 0;
  std::string lower(oci_name.substr(kPrefix.size()));
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return seccomp_arch_resolve_name(lower.c_str());
}

Result<SeccompProfile> ParseSeccompAt(const json& doc, const std::string& base) {
  static constexpr std::string_view kDockerOnly[] = {"archMap", "includes", "excludes", "comment"};
  if (doc.is_object()) {
    for (std::string_view k : kDockerOnly) {
      if (doc.contains(k)) {
        return Error(Field(base, k),
                     "Docker-only field, not part of the OCI runtime spec; list "
                     "\"architectures\" and plain \"syscalls\" instead");
      }
    }
  }
  RETURN_IF_ERROR(CheckObject(doc, base,
                              {"defaultAction", "defaultErrnoRet", "architectures", "flags",
                               "listenerPath", "listenerMetadata", "syscalls"}));
  SeccompProfile p;
  if (!doc.contains("defaultAction")) return Error(Field(base, "defaultAction"), "required");
  ASSIGN_OR_RETURN(p.default_action,
                   ReadAction(doc["defaultAction"], Field(base, "defaultAction")));
  // OCI: an absent errnoRet means EPERM.
  p.default_errno_ret = EPERM;
  if (doc.contains("defaultErrnoRet")) {
    const std::string path = Field(base, "defaultErrnoRet");
    if (!TakesErrno(p.default_action)) {
      return Error(
          path, "only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not " + p.default_action);
    }
    ASSIGN_OR_RETURN(const uint64_t e, ReadUint(doc["defaultErrnoRet"], path, 0, kMaxErrno));
    p.default_errno_ret = static_cast<int>(e);
  }
  for (std::string_view k : {"listenerPath", "listenerMetadata"}) {
    if (doc.contains(k))
      return Error(Field(base, k), "seccomp notify is not supported by the jail");
  }

  std::vector<uint32_t> arch_tokens;
  if (doc.contains("architectures")) {
    const std::string path = Field(base, "architectures");
    ASSIGN_OR_RETURN(p.architectures, ReadStringList(doc["architectures"], path));
    for (size_t i = 0; i < p.architectures.size(); ++i) {
      const uint32_t token = ArchTokenOf(p.architectures[i]);
      if (token == 0) {
        return Error(Item(path, i), "unknown architecture '" + p.architectures[i] +
                                        "' (expected SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)");
      }
      arch_tokens.push_back(token);
    }
  }
  // Names resolve against the listed architectures, or the native one when none is listed.
  if (arch_tokens.empty()) arch_tokens.push_back(seccomp_arch_native());

  if (doc.contains("flags")) {
    const std::string path = Field(base, "flags");
    ASSIGN_OR_RETURN(p.flags, ReadStringList(doc["flags"], path));
    for (size_t i = 0; i < p.flags.size(); ++i) {
      if (p.flags[i] == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") {
        return Error(Item(path, i),
                     "refused: it turns off the speculative store bypass "
                     "mitigation for the sandbox");
      }
      if (!OneOf(p.flags[i], kFlags)) {
        return Error(Item(path, i), "unsupported flag '" + p.flags[i] +
                                        "' (supported: SECCOMP_FILTER_FLAG_TSYNC, "
                                        "SECCOMP_FILTER_FLAG_LOG)");
      }
    }
  }

  if (doc.contains("syscalls")) {
    const std::string path = Field(base, "syscalls");
    const json& list = doc["syscalls"];
    if (!list.is_array()) return Error(path, "must be an array, " + Got(list));
    for (size_t r = 0; r < list.size(); ++r) {
      const std::string rp = Item(path, r);
      const json& entry = list[r];
      RETURN_IF_ERROR(CheckObject(entry, rp, {"names", "action", "errnoRet", "args"}));
      SeccompRule rule;
      if (!entry.contains("names")) return Error(Field(rp, "names"), "required");
      ASSIGN_OR_RETURN(rule.names, ReadStringList(entry["names"], Field(rp, "names")));
      if (rule.names.empty()) return Error(Field(rp, "names"), "must list at least one syscall");
      for (size_t n = 0; n < rule.names.size(); ++n) {
        const std::string& name = rule.names[n];
        // A name missing on one listed architecture is fine (open on aarch64); missing on all of
        // them is a typo. libseccomp gives names it knows from other architectures a negative
        // pseudo number, so only a real (>= 0) number counts.
        const bool known = std::any_of(arch_tokens.begin(), arch_tokens.end(), [&](uint32_t t) {
          return seccomp_syscall_resolve_name_arch(t, name.c_str()) >= 0;
        });
        if (!known) {
          return Error(Item(Field(rp, "names"), n), "unknown syscall '" + name + "'");
        }
      }
      if (!entry.contains("action")) return Error(Field(rp, "action"), "required");
      ASSIGN_OR_RETURN(rule.action, ReadAction(entry["action"], Field(rp, "action")));
      if (entry.contains("errnoRet")) {
        const std::string ep = Field(rp, "errnoRet");
        if (!TakesErrno(rule.action)) {
          return Error(ep,
                       "only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not " + rule.action);
        }
        ASSIGN_OR_RETURN(const uint64_t e, ReadUint(entry["errnoRet"], ep, 0, kMaxErrno));
        rule.errno_ret = static_cast<int>(e);
      } else if (TakesErrno(rule.action)) {
        rule.errno_ret = rule.action == "SCMP_ACT_ERRNO" ? EPERM : 0;
      }
      if (entry.contains("args")) {
        const std::string ap = Field(rp, "args");
        const json& args = entry["args"];
        if (!args.is_array()) return Error(ap, "must be an array, " + Got(args));
        for (size_t i = 0; i < args.size(); ++i) {
          const std::string cp = Item(ap, i);
          RETURN_IF_ERROR(CheckObject(args[i], cp, {"index", "value", "valueTwo", "op"}));
          SeccompArg arg;
          for (std::string_view k : {"index", "value", "op"}) {
            if (!args[i].contains(k)) return Error(Field(cp, k), "required");
          }
          ASSIGN_OR_RETURN(const uint64_t index,
                           ReadUint(args[i]["index"], Field(cp, "index"), 0, kMaxSyscallArgs - 1));
          arg.index = static_cast<unsigned>(index);
          constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
          ASSIGN_OR_RETURN(arg.value, ReadUint(args[i]["value"], Field(cp, "value"), 0, kMax));
          if (args[i].contains("valueTwo")) {
            ASSIGN_OR_RETURN(arg.value_two,
                             ReadUint(args[i]["valueTwo"], Field(cp, "valueTwo"), 0, kMax));
          }
          ASSIGN_OR_RETURN(arg.op, ReadString(args[i]["op"], Field(cp, "op")));
          if (!OneOf(arg.op, kOps)) {
            return Error(Field(cp, "op"), "unknown operator '" + arg.op +
                                              "' (expected SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT "
                                              "or _MASKED_EQ)");
          }
          rule.args.push_back(std::move(arg));
        }
      }
      p.syscalls.push_back(std::move(rule));
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Policy.

bool IsPythonModuleName(const std::string& s) {
  bool start = true;
  for (char c : s) {
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && !start)) return false;
    start = false;
  }
  return !s.empty() && !start;
}

bool IsPolicyName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  }) && s[0] != '.';
}

bool Under(const std::string& child, std::string_view parent) {
  return child.size() > parent.size() && child.compare(0, parent.size(), parent) == 0 &&
         child[parent.size()] == '/';
}

bool SameOrUnder(const std::string& path, std::string_view dir) {
  return path == dir || Under(path, dir);
}

// True when a and b are the same path or one lies under the other.
bool Overlaps(const std::string& a, const std::string& b) {
  return a == b || Under(a, b) || Under(b, a);
}

Result<std::string> ReadAbsolutePath(const json& v, const std::string& path) {
  ASSIGN_OR_RETURN(std::string s, ReadString(v, path));
  if (s[0] != '/') return Error(path, "must be an absolute path, got \"" + s + "\"");
  std::string normal = std::filesystem::path(s).lexically_normal().string();
  if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  if (normal != s) {
    return Error(path, "must be a normalized path (no '.', '..', '//' or trailing '/'): \"" + s +
                           "\" (did you mean \"" + normal + "\"?)");
  }
  return s;
}

// Paths the jail builds itself; a bind over them would replace a layer of the sandbox.
constexpr std::string_view kReservedTargets[] = {"/workspace", "/proc", "/dev", "/sys",
                                                 "/tmp",       "/etc",  "/usr"};
// Host paths never exposed: kernel interfaces, devices, boot files, runtime sockets.
constexpr std::string_view kForbiddenSources[] = {"/proc", "/sys", "/dev", "/boot", "/run"};
// Host paths never writable from the sandbox, nor anything under them.
constexpr std::string_view kSystemPaths[] = {"/etc",   "/usr",   "/bin",    "/sbin", "/lib",
                                             "/lib32", "/lib64", "/libx32", "/root"};
// Directories that may hold a writable bind below them, but never as a whole.
constexpr std::string_view kSharedTops[] = {"/home", "/var", "/opt", "/srv", "/mnt", "/media"};

Result<BindMount> ParseBind(const json& v, const std::string& path) {
  RETURN_IF_ERROR(CheckObject(v, path, {"source", "target", "writable", "optional", "reason"}));
  for (std::string_view k : {"source", "target"}) {
    if (!v.contains(k)) return Error(Field(path, k), "required");
  }
  BindMount b;
  const std::string src = Field(path, "source");
  const std::string dst = Field(path, "target");
  ASSIGN_OR_RETURN(b.source, ReadAbsolutePath(v["source"], src));
  ASSIGN_OR_RETURN(b.target, ReadAbsolutePath(v["target"], dst));
  if (v.contains("writable")) {
    ASSIGN_OR_RETURN(b.writable, ReadBool(v["writable"], Field(path, "writable")));
  }
  if (v.contains("optional")) {
    ASSIGN_OR_RETURN(b.optional, ReadBool(v["optional"], Field(path, "optional")));
  }
  if (v.contains("reason")) {
    ASSIGN_OR_RETURN(b.reason, ReadString(v["reason"], Field(path, "reason")));
  }

  if (b.source == "/") return Error(src, "the host root is never bound into the sandbox");
  for (std::string_view f : kForbiddenSources) {
    if (SameOrUnder(b.source, f)) {
      return Error(src, "\"" + b.source + "\" is under " + std::string(f) +
                            ", which is never exposed to the sandbox");
    }
  }
  if (b.target == "/") return Error(dst, "cannot bind over the sandbox root");
  for (std::string_view r : kReservedTargets) {
    if (Overlaps(b.target, std::string(r))) {
      return Error(dst, "\"" + b.target + "\" overlaps " + std::string(r) +
                            ", which the jail builds itself");
    }
  }
  if (b.writable) {
    if (b.reason.empty()) {
      return Error(Field(path, "writable"),
                   "writable binds are refused unless the policy documents why: add \"reason\"");
    }
    for (std::string_view s : kSystemPaths) {
      if (SameOrUnder(b.source, s)) {
        return Error(src, "\"" + b.source + "\" is a host system path (" + std::string(s) +
                              "); it is never writable from the sandbox");
      }
    }
    for (std::string_view s : kSharedTops) {
      if (b.source == s) {
        return Error(src, "all of " + std::string(s) +
                              " is too broad to be writable; bind the one directory needed");
      }
    }
  }
  std::error_code ec;
  if (!b.optional && !std::filesystem::exists(b.source, ec)) {
    return Error(Field(path, "source"), "\"" + b.source +
                                            "\" does not exist (set \"optional\": "
                                            "true to skip it when missing)");
  }
  return b;
}

Status ParseLimits(const json& v, const std::string& path, Limits& l) {
  RETURN_IF_ERROR(CheckObject(v, path,
                              {"memory_mb",
                               "pids",
                               "cpus",
                               "timeout_default_s",
                               "timeout_max_s",
                               "interrupt_grace_ms",
                               "tmp_mb",
                               "shm_mb",
                               "nofile",
                               "fsize_mb",
                               "nproc",
                               "sigpending",
                               "msgqueue_kb",
                               "inotify_instances",
                               "inotify_watches",
                               "output_kb",
                               "image_kb",
                               "max_images",
                               "max_sessions",
                               "idle_timeout_s",
                               "start_timeout_s",
                               "workspace_mb",
                               "workspace_inodes",
                               "workspace_reserve_mb",
                               "workspace_reserve_inodes"}));
  auto u64 = [&](std::string_view key, uint64_t min, uint64_t max, std::string_view unit,
                 uint64_t scale, uint64_t& out) -> Status {
    if (!v.contains(key)) return Status::Ok();
    ASSIGN_OR_RETURN(const uint64_t n,
                     ReadUint(v[std::string(key)], Field(path, key), min, max, unit));
    out = n * scale;
    return Status::Ok();
  };
  auto u32 = [&](std::string_view key, uint32_t min, uint32_t max, std::string_view unit,
                 uint32_t& out) -> Status {
    uint64_t n = out;
    RETURN_IF_ERROR(u64(key, min, max, unit, 1, n));
    out = static_cast<uint32_t>(n);
    return Status::Ok();
  };
  constexpr uint64_t kMiB = 1ull << 20;
  constexpr uint64_t kKiB = 1ull << 10;
  // Below 32 MiB the interpreter itself does not start; numpy needs about 40.
  RETURN_IF_ERROR(u64("memory_mb", 32, 1ull << 20, "MiB", kMiB, l.memory_bytes));
  // Python plus a BLAS thread pool and one subprocess.
  RETURN_IF_ERROR(u64("pids", 4, 1ull << 22, "", 1, l.pids));
  if (v.contains("cpus")) {
    const json& c = v["cpus"];
    if (!c.is_number() || !std::isfinite(c.get<double>()) || c.get<double>() < 0.01 ||
        c.get<double>() > 1024) {
      return Error(Field(path, "cpus"),
                   "must be a number of cores between 0.01 and 1024, " + Got(c));
    }
    l.cpus = c.get<double>();
  }
  RETURN_IF_ERROR(u32("timeout_default_s", 1, 86400, "seconds", l.timeout_default_s));
  RETURN_IF_ERROR(u32("timeout_max_s", 1, 86400, "seconds", l.timeout_max_s));
  RETURN_IF_ERROR(u32("interrupt_grace_ms", 100, 60000, "ms", l.interrupt_grace_ms));
  RETURN_IF_ERROR(u64("tmp_mb", 1, 1ull << 20, "MiB", kMiB, l.tmp_bytes));
  RETURN_IF_ERROR(u64("shm_mb", 1, 1ull << 20, "MiB", kMiB, l.shm_bytes));
  // Python needs a few dozen fds; the kernel's nr_open default caps the top.
  RETURN_IF_ERROR(u64("nofile", 64, 1ull << 20, "", 1, l.nofile));
  RETURN_IF_ERROR(u64("fsize_mb", 1, 1ull << 30, "MiB", kMiB, l.fsize_bytes));
  RETURN_IF_ERROR(u64("nproc", 4, 1ull << 22, "", 1, l.nproc));
  // Kernel-generated signals (SIGCHLD, timers, faults) are never refused; this bounds what the
  // code queues with sigqueue and friends.
  RETURN_IF_ERROR(u64("sigpending", 8, 1ull << 16, "", 1, l.sigpending));
  // 0: no POSIX message queues (the shipped profiles deny mq_* anyway).
  RETURN_IF_ERROR(u64("msgqueue_kb", 0, 1ull << 16, "KiB", kKiB, l.msgqueue_bytes));
  RETURN_IF_ERROR(u64("inotify_instances", 0, 1024, "", 1, l.inotify_instances));
  RETURN_IF_ERROR(u64("inotify_watches", 0, 1ull << 20, "", 1, l.inotify_watches));
  RETURN_IF_ERROR(u64("output_kb", 1, 2048, "KiB", kKiB, l.output_bytes));
  RETURN_IF_ERROR(u64("image_kb", 16, 4096, "KiB", kKiB, l.image_bytes));
  RETURN_IF_ERROR(u32("max_images", 0, 64, "", l.max_images));
  RETURN_IF_ERROR(u32("max_sessions", 1, 256, "", l.max_sessions));
  RETURN_IF_ERROR(u32("idle_timeout_s", 10, 7 * 86400, "seconds", l.idle_timeout_s));
  RETURN_IF_ERROR(u32("start_timeout_s", 1, 3600, "seconds", l.start_timeout_s));
  // Workspace budget: a kernel's own saved outputs need a few MiB and a few dozen files; the
  // reserve must leave room for one write_file of a typical size and its temp file.
  RETURN_IF_ERROR(u64("workspace_mb", 8, 1ull << 30, "MiB", kMiB, l.workspace_bytes));
  RETURN_IF_ERROR(u64("workspace_inodes", 64, 1ull << 32, "", 1, l.workspace_inodes));
  RETURN_IF_ERROR(
      u64("workspace_reserve_mb", 1, 1ull << 20, "MiB", kMiB, l.workspace_reserve_bytes));
  RETURN_IF_ERROR(
      u64("workspace_reserve_inodes", 8, 1ull << 24, "", 1, l.workspace_reserve_inodes));

  if (l.timeout_default_s > l.timeout_max_s) {
    return Error(Field(path, "timeout_default_s"), "must not exceed timeout_max_s (" +
                                                       std::to_string(l.timeout_default_s) + " > " +
                                                       std::to_string(l.timeout_max_s) + ")");
  }
  if (l.tmp_bytes + l.shm_bytes > l.memory_bytes * 4) {
    return Error(Field(path, "tmp_mb"), "tmp_mb + shm_mb may be at most 4x memory_mb");
  }
  if (WorstCaseReplyBytes(l) > kMaxReplyBytes) {
    return Error(path, "4 * output_kb + max_images * image_kb * 4/3 = " +
                           std::to_string(WorstCaseReplyBytes(l) >> 10) +
                           " KiB per reply; keep it under " + std::to_string(kMaxReplyBytes >> 10) +
                           " KiB so a reply fits a client's 10 MB message limit");
  }
  return Status::Ok();
}

// Tracks the keys of each open object while parsing; nlohmann keeps the last duplicate silently.
class DuplicateKeyCheck {
 public:
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_.empty()) keys_.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys_.empty() && !keys_.back().insert(parsed.get<std::string>()).second &&
            duplicate_.empty()) {
          duplicate_ = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  }
  std::vector<std::set<std::string>> keys_;
  std::string duplicate_;
};

Result<std::string> ReadWholeFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(Code::kNotFound, "cannot read " + std::string(what) + " " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return ErrnoStatus(Code::kInternal, "error reading " + path);
  return ss.str();
}

}  // namespace

uint64_t WorstCaseReplyBytes(const Limits& l) {
  return 4 * l.output_bytes + uint64_t{l.max_images} * l.image_bytes * 4 / 3;
}

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadWholeFile(path, "file"));
  auto check = std::make_shared<DuplicateKeyCheck>();
  json doc;
  try {
    doc = json::parse(text,
                      [check](int d, json::parse_event_t e, json& p) { return (*check)(d, e, p); });
  } catch (const json::parse_error& e) {
    return InvalidArgument(path + ": invalid JSON: " + e.what());
  }
  if (!check->duplicate_.empty()) {
    return InvalidArgument(path + ": duplicate key \"" + check->duplicate_ + "\"");
  }
  return doc;
}

Result<SeccompProfile> ParseSeccompProfile(const nlohmann::json& doc) {
  return ParseSeccompAt(doc, "");
}

Result<PolicyPtr> ParsePolicy(const nlohmann::json& doc, const std::string& seccomp_dir,
                              const std::string& source_path) {
  RETURN_IF_ERROR(CheckObject(doc, "",
                              {"name", "description", "limits", "network", "preload", "extra_binds",
                               "landlock", "seccomp_profile"}));
  auto policy = std::make_shared<Policy>();
  Policy& p = *policy;
  p.source_path = source_path;

  if (!doc.contains("name")) return Error("name", "required");
  ASSIGN_OR_RETURN(p.name, ReadString(doc["name"], "name"));
  if (!IsPolicyName(p.name)) {
    return Error("name",
                 "must be letters, digits, '-', '_' or '.', at most 64, got \"" + p.name + "\"");
  }
  if (doc.contains("description")) {
    ASSIGN_OR_RETURN(p.description, ReadString(doc["description"], "description", true));
  }
  if (doc.contains("limits")) RETURN_IF_ERROR(ParseLimits(doc["limits"], "limits", p.limits));

  if (doc.contains("network")) {
    ASSIGN_OR_RETURN(const std::string net, ReadString(doc["network"], "network"));
    if (net == "host") {
      return Error("network",
                   "\"host\" is refused for kernel policies (only the package "
                   "installer's jail uses the host network); use \"none\"");
    }
    if (net != "none") return Error("network", "must be \"none\", got \"" + net + "\"");
    p.network = NetworkMode::kNone;
  }

  if (doc.contains("preload")) {
    ASSIGN_OR_RETURN(p.preload, ReadStringList(doc["preload"], "preload"));
    for (size_t i = 0; i < p.preload.size(); ++i) {
      if (!IsPythonModuleName(p.preload[i])) {
        return Error(Item("preload", i), "not a Python module name: \"" + p.preload[i] + "\"");
      }
    }
  }

  if (doc.contains("extra_binds")) {
    const json& binds = doc["extra_binds"];
    if (!binds.is_array()) return Error("extra_binds", "must be an array, " + Got(binds));
    for (size_t i = 0; i < binds.size(); ++i) {
      ASSIGN_OR_RETURN(BindMount b, ParseBind(binds[i], Item("extra_binds", i)));
      for (size_t j = 0; j < p.extra_binds.size(); ++j) {
        if (Overlaps(b.target, p.extra_binds[j].target)) {
          return Error(Field(Item("extra_binds", i), "target"),
                       "overlaps extra_binds[" + std::to_string(j) + "].target \"" +
                           p.extra_binds[j].target + "\"");
        }
      }
      p.extra_binds.push_back(std::move(b));
    }
  }

  if (doc.contains("landlock")) {
    ASSIGN_OR_RETURN(p.landlock, ReadBool(doc["landlock"], "landlock"));
  }

  if (!doc.contains("seccomp_profile")) {
    return Error("seccomp_profile", "required: a file name in " + seccomp_dir +
                                        " (e.g. \"default.json\") or an inline OCI profile");
  }
  const json& sp = doc["seccomp_profile"];
  if (sp.is_string()) {
    const auto file = sp.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file[0] == '.') {
      return Error("seccomp_profile",
                   "must be a plain file name in " + seccomp_dir + ", got \"" + file + "\"");
    }
    p.seccomp_source_path = seccomp_dir + "/" + file;
    auto loaded = ReadJsonFile(p.seccomp_source_path);
    if (!loaded.ok()) return loaded.status().Annotate("seccomp_profile");
    auto parsed = ParseSeccompAt(*loaded, "");
    if (!parsed.ok()) return parsed.status().Annotate("seccomp_profile " + p.seccomp_source_path);
    p.seccomp = std::move(parsed).value();
  } else if (sp.is_object()) {
    ASSIGN_OR_RETURN(p.seccomp, ParseSeccompAt(sp, "seccomp_profile"));
  } else {
    return Error("seccomp_profile", "must be a file name or an OCI profile object, " + Got(sp));
  }
  // Compile once now: libseccomp-level conflicts surface at load time, not at the first spawn.
  if (auto compiled = CompileSeccompProfile(p.seccomp); !compiled.ok()) {
    return compiled.status().Annotate("seccomp_profile");
  }
  return PolicyPtr(std::move(policy));
}

Result<PolicyPtr> LoadPolicy(const std::string& name_or_path, const std::string& policies_dir) {
  const bool is_path =
      name_or_path.find('/') != std::string::npos ||
      (name_or_path.size() > 5 && name_or_path.compare(name_or_path.size() - 5, 5, ".json") == 0);
  std::string path;
  if (is_path) {
    path = name_or_path;
  } else {
    if (!IsPolicyName(name_or_path)) {
      return InvalidArgument("policy name \"" + name_or_path +
                             "\" is not valid (letters, digits, '-', '_'; or give a path to a "
                             ".json file)");
    }
    path = policies_dir + "/" + name_or_path + ".json";
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    std::string hint;
    if (!is_path) {
      hint = " (available:";
      for (const auto& e : std::filesystem::directory_iterator(policies_dir, ec)) {
        if (e.path().extension() == ".json") hint += " " + e.path().stem().string();
      }
      hint += ")";
    }
    return Status(Code::kNotFound, "policy " + path + " not found" + hint, ENOENT);
  }
  ASSIGN_OR_RETURN(const json doc, ReadJsonFile(path));
  auto policy = ParsePolicy(doc, policies_dir + "/seccomp", path);
  if (!policy.ok()) return policy.status().Annotate("policy " + path);
  return policy;
}

nlohmann::json PolicyToJson(const Policy& policy) {
  const Limits& l = policy.limits;
  json limits = {
      {"memory_mb", l.memory_bytes >> 20},
      {"pids", l.pids},
      {"cpus", l.cpus},
      {"timeout_default_s", l.timeout_default_s},
      {"timeout_max_s", l.timeout_max_s},
      {"interrupt_grace_ms", l.interrupt_grace_ms},
      {"tmp_mb", l.tmp_bytes >> 20},
      {"shm_mb", l.shm_bytes >> 20},
      {"nofile", l.nofile},
      {"fsize_mb", l.fsize_bytes >> 20},
      {"nproc", l.nproc},
      {"sigpending", l.sigpending},
      {"msgqueue_kb", l.msgqueue_bytes >> 10},
      {"inotify_instances", l.inotify_instances},
      {"inotify_watches", l.inotify_watches},
      {"output_kb", l.output_bytes >> 10},
      {"image_kb", l.image_bytes >> 10},
      {"max_images", l.max_images},
      {"max_sessions", l.max_sessions},
      {"idle_timeout_s", l.idle_timeout_s},
      {"start_timeout_s", l.start_timeout_s},
      {"workspace_mb", l.workspace_bytes >> 20},
      {"workspace_inodes", l.workspace_inodes},
      {"workspace_reserve_mb", l.workspace_reserve_bytes >> 20},
      {"workspace_reserve_inodes", l.workspace_reserve_inodes},
  };
  json binds = json::array();
  for (const BindMount& b : policy.extra_binds) {
    json j = {{"source", b.source},
              {"target", b.target},
              {"writable", b.writable},
              {"optional", b.optional}};
    if (!b.reason.empty()) j["reason"] = b.reason;
    binds.push_back(std::move(j));
  }
  return {
      {"name", policy.name},
      {"description", policy.description},
      {"limits", std::move(limits)},
      {"network", policy.network == NetworkMode::kHost ? "host" : "none"},
      {"preload", policy.preload},
      {"extra_binds", std::move(binds)},
      {"landlock", policy.landlock},
      {"seccomp_profile", SeccompToOci(policy.seccomp)},
  };
}

nlohmann::json SeccompToOci(const SeccompProfile& profile) {
  json out = {{"defaultAction", profile.default_action}};
  if (TakesErrno(profile.default_action)) out["defaultErrnoRet"] = profile.default_errno_ret;
  out["architectures"] = profile.architectures;
  if (!profile.flags.empty()) out["flags"] = profile.flags;
  json rules = json::array();
  for (const SeccompRule& r : profile.syscalls) {
    json j = {{"names", r.names}, {"action", r.action}};
    // Always explicit: other runtimes read an absent errnoRet as EPERM.
    if (TakesErrno(r.action))
      j["errnoRet"] = r.errno_ret < 0 ? profile.default_errno_ret : r.errno_ret;
    if (!r.args.empty()) {
      json args = json::array();
      for (const SeccompArg& a : r.args) {
        args.push_back(
            {{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", a.op}});
      }
      j["args"] = std::move(args);
    }
    rules.push_back(std::move(j));
  }
  out["syscalls"] = std::move(rules);
  return out;
}

}  // namespace mcpx::jail
