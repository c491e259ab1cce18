// The MCP server: lifecycle (initialize, version negotiation), ping, logging, tools and
// resources on top of the JSON-RPC Dispatcher, plus the stdio wiring for `serve`.
//
// Tools come from a ToolRegistry that must outlive the server. Work that must happen before
// the process exits (killing kernels, removing cgroups) is registered with OnShutdown(); Run()
// calls those hooks on EOF, on a broken stdout, and on SIGTERM/SIGINT.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mcp/connection.h"
#include "mcp/dispatcher.h"
#include "mcp/resources.h"
#include "mcp/tool_registry.h"

namespace mcpx {
class EventLoop;
}

namespace mcpx::mcp {

class StdioTransport;

// Protocol revisions we speak, preferred first.
inline constexpr std::string_view kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                         "2024-11-05"};

struct ServerOptions {
  // tools/list page size; 0 puts every tool in one page.
  size_t tools_page_size = 0;
  std::string instructions;  // empty: the built-in text
};

// The version reported in serverInfo (the project version).
std::string_view ServerVersion();

class Server {
 public:
  Server(MessageSink& sink, const ToolRegistry& registry, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void SetResources(std::unique_ptr<ResourceProvider> provider) {
    resources_ = std::move(provider);
  }
  // Hooks run once, most recently added first (like destructors), before the process exits.
  void OnShutdown(std::function<void()> hook) { shutdown_hooks_.push_back(std::move(hook)); }
  void Shutdown();

  void HandleLine(std::string_view line) { dispatcher_.HandleLine(line); }
  void HandleOversized(size_t limit) { dispatcher_.HandleOversized(limit); }

  // A server event for the client (notifications/message), filtered by logging/setLevel.
  void Log(LogLevel level, std::string message);

  bool initialized() const { return dispatcher_.initialized(); }
  size_t calls_in_flight() const;

  // Serves on `transport` until EOF, a broken stdout, SIGTERM or SIGINT, then runs the shutdown
  // hooks and flushes what is left. Returns the process exit code. Ignores SIGPIPE.
  int Run(EventLoop& loop, StdioTransport& transport);

 private:
  void RegisterMethods();
  Outcome Initialize(const std::string& version, const json& client_info);
  Outcome ListTools(const std::optional<std::string>& cursor);
  Outcome CallTool(std::string name, json arguments, json progress_token, const Request& request);
  Outcome ListResources(const std::optional<std::string>& cursor);
  Outcome ReadResource(const std::string& uri);
  void CancelCall(const json& params);

  std::shared_ptr<Connection> connection_;
  Dispatcher dispatcher_;
  const ToolRegistry& registry_;
  ServerOptions options_;
  std::unique_ptr<ResourceProvider> resources_;
  std::vector<std::function<void()>> shutdown_hooks_;
  bool shut_down_ = false;
};

}  // namespace mcpx::mcp
