#include "mcp/request_meta.h"

#include <utility>

namespace mcpx::mcp {
namespace {

std::string Field(std::string_view key) { return "params._meta[\"" + std::string(key) + "\"]"; }

}  // namespace

bool RequestMeta::tasks_extension() const {
  auto ext = client_capabilities.find("extensions");
  return ext != client_capabilities.end() && ext->is_object() &&
         ext->contains(meta::kTasksExtension);
}

json SupportedVersions() {
  json versions = json::array({kModernVersion});
  for (std::string_view v : kLegacyVersions) versions.push_back(v);
  return versions;
}

RpcOr<RequestMeta> ReadRequestMeta(const json& params) {
  RequestMeta out;
  auto m = params.find("_meta");
  if (m == params.end() || !m->is_object()) return out;
  const json& meta = *m;
  if (!meta.contains(meta::kProtocolVersion) && !meta.contains(meta::kClientCapabilities) &&
      !meta.contains(meta::kClientInfo)) {
    return out;
  }
  out.modern = true;
  auto version = meta.find(meta::kProtocolVersion);
  if (version == meta.end() || !version->is_string()) {
    return InvalidParams(
        Field(meta::kProtocolVersion) +
        (version == meta.end() ? " is missing" : " must be a string, got " + TypeName(*version)) +
        ": every 2026-07-28 request names its protocol version");
  }
  const auto& requested = version->get_ref<const std::string&>();
  if (requested != kModernVersion) {
    std::string hint = "unsupported protocol version '" + requested + "'";
    for (std::string_view v : kLegacyVersions) {
      if (v == requested) hint += ": " + requested + " is served after an initialize handshake";
    }
    return RpcError{rpc::kUnsupportedProtocolVersion, std::move(hint),
                    json{{"supported", SupportedVersions()}, {"requested", requested}}};
  }
  auto caps = meta.find(meta::kClientCapabilities);
  if (caps == meta.end() || !caps->is_object()) {
    return InvalidParams(
        Field(meta::kClientCapabilities) +
        (caps == meta.end() ? " is missing" : " must be an object, got " + TypeName(*caps)) +
        ": every 2026-07-28 request declares its client capabilities");
  }
  out.client_capabilities = *caps;
  if (auto level = meta.find(meta::kLogLevel); level != meta.end()) {
    std::optional<LogLevel> parsed;
    if (level->is_string()) parsed = ParseLogLevel(level->get<std::string>());
    if (!parsed) {
      return InvalidParams(Field(meta::kLogLevel) + " must be one of " + LogLevelChoices() +
                           "; got " + level->dump());
    }
    out.log_level = parsed;
  }
  return out;
}

RpcError MissingTasksExtension(std::string_view method) {
  return RpcError{rpc::kMissingClientCapability,
                  std::string(method) + " needs the client capability extensions[\"" +
                      std::string(meta::kTasksExtension) + "\"] in this request's _meta",
                  json{{"requiredCapabilities",
                        {{"extensions", {{std::string(meta::kTasksExtension), json::object()}}}}}}};
}

json ModernResult(json result, const json& server_info) {
  if (!result.contains("resultType")) result["resultType"] = "complete";
  json& m = result["_meta"];
  if (m.is_null()) m = json::object();
  if (m.is_object()) m[std::string(meta::kServerInfo)] = server_info;
  return result;
}

}  // namespace mcpx::mcp
