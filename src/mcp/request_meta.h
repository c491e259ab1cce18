// What a request says about itself in params._meta: which protocol era it belongs to and, for
// the stateless 2026-07-28 revision, the version, client capabilities and log level it carries.
//
// A request is modern when its _meta names any of the per-request keys
// (io.modelcontextprotocol/protocolVersion, clientCapabilities, clientInfo); otherwise it is
// legacy and served under what `initialize` negotiated. Modern requests never depend on an
// earlier request: each one is checked and answered on its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mcp/connection.h"
#include "mcp/jsonrpc.h"

namespace mcpx::mcp {

// The stateless revision, and the handshake revisions `initialize` negotiates, preferred first.
inline constexpr std::string_view kModernVersion = "2026-07-28";
inline constexpr std::string_view kLegacyVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                       "2024-11-05"};
// The first revision with (experimental) tasks, negotiated through `initialize`.
inline constexpr std::string_view kLegacyTasksVersion = "2025-11-25";

namespace meta {
inline constexpr std::string_view kProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kClientCapabilities =
    "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view kLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view kServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr std::string_view kRelatedTask = "io.modelcontextprotocol/related-task";
inline constexpr std::string_view kTasksExtension = "io.modelcontextprotocol/tasks";
}  // namespace meta

namespace rpc {
// Codes the 2026-07-28 revision defines.
inline constexpr int kMissingClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;
}  // namespace rpc

struct RequestMeta {
  bool modern = false;
  json client_capabilities = json::object();  // modern only
  std::optional<LogLevel> log_level;          // modern only: absent means no log messages

  // The request's client declared the tasks extension (modern only).
  bool tasks_extension() const;
};

// Every version a client can use with this server: the modern one, then the handshake ones.
json SupportedVersions();

// Reads params._meta. Errors: -32602 for a missing or mistyped per-request field or log level,
// -32022 for a protocol version this server does not serve statelessly.
RpcOr<RequestMeta> ReadRequestMeta(const json& params);

// -32021 naming the tasks extension, for a task method the request's client did not declare.
RpcError MissingTasksExtension(std::string_view method);

// A modern result: resultType "complete" unless the result already has one, and the server's
// identity in _meta.
json ModernResult(json result, const json& server_info);

}  // namespace mcpx::mcp
