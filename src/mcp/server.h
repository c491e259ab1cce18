// The MCP server, dual-era: the 2026-07-28 revision (server/discover, stateless requests with
// per-request _meta) beside the handshake revisions (initialize, version negotiation, ping,
// logging/setLevel); tools, resources and tasks (tasks.h) on top of the JSON-RPC Dispatcher,
// plus the stdio wiring for `serve`.
//
// Tools come from a ToolRegistry that must outlive the server. Work that must happen before
// the process exits (killing kernels, removing cgroups) is registered with OnShutdown(); Run()
// calls those hooks on EOF, on a broken stdout, and on SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mcp/connection.h"
#include "mcp/dispatcher.h"
#include "mcp/request_meta.h"
#include "mcp/resources.h"
#include "mcp/tasks.h"
#include "mcp/timers.h"
#include "mcp/tool_registry.h"

namespace mcpx {
class EventLoop;
}

namespace mcpx::mcp {

class StdioTransport;

class ToolCallImpl;
struct CallContext;

struct ServerOptions {
  // tools/list page size; 0 puts every tool in one page.
  size_t tools_page_size = 0;
  std::string instructions;  // empty: the built-in text
  // A 2026-07-28 call of a task tool, from a client with the tasks extension, that is still
  // running after this long is answered with a task handle and goes on as a task.
  std::chrono::milliseconds task_after{1000};
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
  // Without timers, calls never become tasks on their own and get no keepalive progress.
  void SetTimers(std::unique_ptr<Timers> timers) { timers_ = std::move(timers); }
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

  // Typed params of tools/call and of the tasks/* methods.
  struct CallRequest {
    std::string name;
    json arguments;
    json progress_token;       // null: no progress wanted
    std::optional<json> task;  // legacy params.task: {ttl?}
  };
  struct TaskRequest {
    std::string task_id;
  };

 private:
  void RegisterMethods();
  void RegisterTaskMethods();
  Outcome Initialize(const std::string& version, const json& client_info);
  Outcome Discover() const;
  json Capabilities(bool modern) const;
  Outcome ListTools(const std::optional<std::string>& cursor, const Request& request);
  Outcome CallTool(CallRequest call, const Request& request);
  // A 2025-11-25 task: answered at once with the handle, the call runs on behind it.
  Outcome StartLegacyTask(Tool& tool, CallRequest p, CallContext context, const Request& request);
  // Runs the tool, turning an exception into an error result.
  void RunTool(Tool& tool, const std::shared_ptr<ToolCallImpl>& call);
  void PromoteLater(const std::shared_ptr<ToolCallImpl>& call, std::string tool);
  void ArmKeepalive();
  Outcome ListResources(const std::optional<std::string>& cursor, const Request& request);
  Outcome ReadResource(const std::string& uri, const Request& request);
  void CancelCall(const json& params);
  // The task a tasks/* request names, or its error (era, extension, unknown id).
  RpcOr<std::shared_ptr<Task>> FindTask(const TaskRequest& p, const Request& request);
  bool legacy_tasks() const { return legacy_version_ == kLegacyTasksVersion; }

  std::shared_ptr<Connection> connection_;
  Dispatcher dispatcher_;
  const ToolRegistry& registry_;
  ServerOptions options_;
  json server_info_;
  std::unique_ptr<ResourceProvider> resources_;
  std::unique_ptr<Timers> timers_;
  std::shared_ptr<TaskStore> tasks_;
  std::string legacy_version_;  // what initialize negotiated; empty before
  bool keepalive_armed_ = false;
  // Timer callbacks hold a weak_ptr to this: they do nothing once the server is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<std::function<void()>> shutdown_hooks_;
  bool shut_down_ = false;
};

}  // namespace mcpx::mcp
