#include "session/server_policy.h"

#include <iterator>
#include <string_view>
#include <utility>

#include "jail/json_fields.h"

namespace mcpx::session {
namespace {

using jail::Error;
using jail::Field;
using jail::UintField;
using nlohmann::json;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kKiB = 1ull << 10;

// One entry per session key of "limits", like the jail's table (jail/policy.cc): parsing, the
// key check and `policy show` walk it.
struct SettingSpec {
  std::string_view name;
  UintField<SessionSettings> field;
};

const SettingSpec kSettingSpecs[] = {
    {"timeout_default_s", {&SessionSettings::timeout_default_s, 1, 86400, "seconds"}},
    {"timeout_max_s", {&SessionSettings::timeout_max_s, 1, 86400, "seconds"}},
    {"interrupt_grace_ms", {&SessionSettings::interrupt_grace_ms, 100, 60000, "ms"}},
    {"output_kb", {&SessionSettings::output_bytes, 1, 2048, "KiB", kKiB}},
    {"image_kb", {&SessionSettings::image_bytes, 16, 4096, "KiB", kKiB}},
    {"image_px", {&SessionSettings::image_px, 64, 8192, "px"}},
    {"saved_outputs_session_mb",
     {&SessionSettings::saved_outputs_session_bytes, 1, 1ull << 20, "MiB", kMiB}},
    {"saved_outputs_mb", {&SessionSettings::saved_outputs_bytes, 1, 1ull << 20, "MiB", kMiB}},
    {"max_images", {&SessionSettings::max_images, 0, 64}},
    {"max_sessions", {&SessionSettings::max_sessions, 1, 256}},
    {"idle_timeout_s", {&SessionSettings::idle_timeout_s, 10, 7 * 86400, "seconds"}},
    {"start_timeout_s", {&SessionSettings::start_timeout_s, 1, 3600, "seconds"}},
    {"install_timeout_s", {&SessionSettings::install_timeout_s, 5, 3600, "seconds"}},
    // Workspace budget: a kernel's own saved outputs need a few MiB and a few dozen files; the
    // reserve must leave room for one write_file of a typical size and its temp file.
    {"workspace_mb", {&SessionSettings::workspace_bytes, 8, 1ull << 30, "MiB", kMiB}},
    {"workspace_inodes", {&SessionSettings::workspace_inodes, 64, 1ull << 32}},
    {"workspace_reserve_mb",
     {&SessionSettings::workspace_reserve_bytes, 1, 1ull << 20, "MiB", kMiB}},
    {"workspace_reserve_inodes", {&SessionSettings::workspace_reserve_inodes, 8, 1ull << 24}},
};

constexpr std::string_view kSessionFields[] = {"preload", "allow_sdist", "record_notebook",
                                               "zygote"};

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

const SettingSpec* FindSpec(std::string_view name) {
  for (const SettingSpec& spec : kSettingSpecs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

// Every key of the document and of its "limits" is the jail's or the session's; checked before
// either reads a value, so a typo is named first ("limits.ouput_kb: unknown field (did you mean
// 'output_kb'?)"), with a suggestion from every known key.
Status CheckKeys(const json& doc) {
  std::vector<std::string_view> fields = jail::PolicyFields();
  fields.insert(fields.end(), std::begin(kSessionFields), std::end(kSessionFields));
  RETURN_IF_ERROR(jail::CheckObject(doc, "", fields));
  if (!doc.contains("limits") || !doc["limits"].is_object()) return Status::Ok();
  std::vector<std::string_view> limits = jail::LimitFields();
  for (const SettingSpec& spec : kSettingSpecs) limits.push_back(spec.name);
  return jail::CheckObject(doc["limits"], "limits", limits);
}

// `rest`: the limits the jail did not read, all known (CheckKeys).
Status ParseLimits(const json& rest, SessionSettings& s) {
  for (const auto& [key, value] : rest.items()) {
    RETURN_IF_ERROR(FindSpec(key)->field.Read(value, Field("limits", key), s));
  }
  if (s.timeout_default_s > s.timeout_max_s) {
    return Error("limits.timeout_default_s", "must not exceed timeout_max_s (" +
                                                 std::to_string(s.timeout_default_s) + " > " +
                                                 std::to_string(s.timeout_max_s) + ")");
  }
  if (WorstCaseReplyBytes(s) > kMaxReplyBytes) {
    return Error("limits", "4 * output_kb + max_images * image_kb * 4/3 = " +
                               std::to_string(WorstCaseReplyBytes(s) >> 10) +
                               " KiB per reply; keep it under " +
                               std::to_string(kMaxReplyBytes >> 10) +
                               " KiB so a reply fits a client's 10 MB message limit");
  }
  return Status::Ok();
}

// `others`: what the jail did not read, all known (CheckKeys).
Result<SessionSettings> ParseSettings(const json& others) {
  SessionSettings s;
  if (others.contains("limits")) RETURN_IF_ERROR(ParseLimits(others["limits"], s));
  if (others.contains("preload")) {
    ASSIGN_OR_RETURN(s.preload, jail::ReadStringList(others["preload"], "preload"));
    for (size_t i = 0; i < s.preload.size(); ++i) {
      if (!IsPythonModuleName(s.preload[i])) {
        return Error(jail::Item("preload", i),
                     "not a Python module name: \"" + s.preload[i] + "\"");
      }
    }
  }
  if (others.contains("allow_sdist")) {
    ASSIGN_OR_RETURN(s.allow_sdist, jail::ReadBool(others["allow_sdist"], "allow_sdist"));
  }
  if (others.contains("record_notebook")) {
    ASSIGN_OR_RETURN(s.record_notebook,
                     jail::ReadBool(others["record_notebook"], "record_notebook"));
  }
  if (others.contains("zygote")) {
    ASSIGN_OR_RETURN(s.zygote, jail::ReadBool(others["zygote"], "zygote"));
  }
  return s;
}

}  // namespace

uint64_t WorstCaseReplyBytes(const SessionSettings& s) {
  return 4 * s.output_bytes + uint64_t{s.max_images} * s.image_bytes * 4 / 3;
}

Result<ServerPolicyPtr> ParseServerPolicy(const json& doc, const std::string& seccomp_dir,
                                          const std::string& source_path) {
  RETURN_IF_ERROR(CheckKeys(doc));
  ASSIGN_OR_RETURN(jail::PolicyPtr sandbox, jail::ParsePolicy(doc, seccomp_dir, source_path));
  ASSIGN_OR_RETURN(SessionSettings settings, ParseSettings(sandbox->others));
  return std::make_shared<const ServerPolicy>(
      ServerPolicy{std::move(sandbox), std::move(settings)});
}

Result<ServerPolicyPtr> LoadServerPolicy(const std::string& name_or_path,
                                         const std::string& policies_dir) {
  ASSIGN_OR_RETURN(const jail::PolicyFile file, jail::ReadPolicyFile(name_or_path, policies_dir));
  auto policy = ParseServerPolicy(file.doc, policies_dir + "/seccomp", file.path);
  if (!policy.ok()) return policy.status().Annotate("policy " + file.path);
  return policy;
}

json ServerPolicyToJson(const ServerPolicy& policy) {
  json j = jail::PolicyToJson(*policy.sandbox);
  for (const SettingSpec& spec : kSettingSpecs) {
    j["limits"][std::string(spec.name)] = spec.field.Shown(policy.settings);
  }
  j["preload"] = policy.settings.preload;
  j["allow_sdist"] = policy.settings.allow_sdist;
  j["record_notebook"] = policy.settings.record_notebook;
  j["zygote"] = policy.settings.zygote;
  return j;
}

}  // namespace mcpx::session
