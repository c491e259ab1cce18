#include "jail/policy.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string_view>
#include <utility>
#include <variant>

#include "jail/json_fields.h"
#include "jail/seccomp_compiler.h"

namespace mcpx::jail {
namespace {

using nlohmann::json;

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
  std::string s;  // declared first: GCC 12 -O2 takes the moved-into one for uninitialized
  ASSIGN_OR_RETURN(s, ReadString(v, path));
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

constexpr std::string_view kPolicyFields[] = {
    "name", "description", "limits", "network", "extra_binds", "landlock", "seccomp_profile"};

}  // namespace

std::vector<std::string_view> PolicyFields() {
  return {std::begin(kPolicyFields), std::end(kPolicyFields)};
}

Result<PolicyPtr> ParsePolicy(const nlohmann::json& doc, const std::string& seccomp_dir,
                              const std::string& source_path) {
  if (!doc.is_object()) return Error("", "must be an object, " + Got(doc));
  auto policy = std::make_shared<Policy>();
  Policy& p = *policy;
  p.source_path = source_path;
  for (const auto& [key, value] : doc.items()) {
    const bool ours = std::find(std::begin(kPolicyFields), std::end(kPolicyFields), key) !=
                      std::end(kPolicyFields);
    if (!ours) p.others[key] = value;
  }

  if (!doc.contains("name")) return Error("name", "required");
  ASSIGN_OR_RETURN(p.name, ReadString(doc["name"], "name"));
  if (!IsPolicyName(p.name)) {
    return Error("name",
                 "must be letters, digits, '-', '_' or '.', at most 64, got \"" + p.name + "\"");
  }
  if (doc.contains("description")) {
    ASSIGN_OR_RETURN(p.description, ReadString(doc["description"], "description", true));
  }
  if (doc.contains("limits")) {
    json other_limits = json::object();
    RETURN_IF_ERROR(ParseLimits(doc["limits"], "limits", p.limits, other_limits));
    if (!other_limits.empty()) p.others["limits"] = std::move(other_limits);
  }

  if (doc.contains("network")) {
    ASSIGN_OR_RETURN(const std::string net, ReadString(doc["network"], "network"));
    if (net == "host") {
      return Error("network",
                   "\"host\" is refused for kernel policies (a sandbox gets its own network "
                   "namespace with loopback only); use \"none\"");
    }
    if (net != "none") return Error("network", "must be \"none\", got \"" + net + "\"");
    p.network = NetworkMode::kNone;
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
    auto parsed = ParseSeccompProfile(*loaded);
    if (!parsed.ok()) return parsed.status().Annotate("seccomp_profile " + p.seccomp_source_path);
    p.seccomp = std::move(parsed).value();
  } else if (sp.is_object()) {
    ASSIGN_OR_RETURN(p.seccomp, ParseSeccompProfile(sp, "seccomp_profile"));
  } else {
    return Error("seccomp_profile", "must be a file name or an OCI profile object, " + Got(sp));
  }
  // Compiled once, here: libseccomp-level conflicts surface at load time, and every spawn
  // installs these bytes. Built-in first (see seccomp_compiler.h for why this order).
  auto builtin = CompileBuiltinFilter();
  if (!builtin.ok()) return builtin.status().Annotate("cannot compile the built-in seccomp filter");
  auto profile = CompileSeccompProfile(p.seccomp);
  if (!profile.ok()) return profile.status().Annotate("seccomp_profile");
  p.seccomp_programs.push_back(std::move(builtin).value());
  p.seccomp_programs.push_back(std::move(profile).value());
  return PolicyPtr(std::move(policy));
}

Result<PolicyFile> ReadPolicyFile(const std::string& name_or_path,
                                  const std::string& policies_dir) {
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
  ASSIGN_OR_RETURN(json doc, ReadJsonFile(path));
  return PolicyFile{path, std::move(doc)};
}

Result<PolicyPtr> LoadPolicy(const std::string& name_or_path, const std::string& policies_dir) {
  ASSIGN_OR_RETURN(const PolicyFile file, ReadPolicyFile(name_or_path, policies_dir));
  auto policy = ParsePolicy(file.doc, policies_dir + "/seccomp", file.path);
  if (!policy.ok()) return policy.status().Annotate("policy " + file.path);
  return policy;
}

nlohmann::json PolicyToJson(const Policy& policy) {
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
      {"limits", LimitsToJson(policy.limits)},
      {"network", "none"},
      {"extra_binds", std::move(binds)},
      {"landlock", policy.landlock},
      {"seccomp_profile", SeccompToOci(policy.seccomp)},
  };
}

}  // namespace mcpx::jail
