#include "jail/seccomp_profile.h"

#include <seccomp.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <limits>
#include <string_view>
#include <utility>

#include "jail/json_fields.h"

namespace mcpx::jail {
namespace {

using nlohmann::json;

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

}  // namespace

Result<SeccompProfile> ParseSeccompProfile(const json& doc, const std::string& base) {
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
