// The interface between the MCP layer and the tools.
//
// The dispatcher turns a `tools/call` request into a ToolCall and hands it to the Tool. A tool
// may Finish() at once (file tools) or later from an event-loop callback (execute_python). The
// ToolCall stays valid (shared_ptr) until finished; finishing twice, or after the client
// cancelled, is a no-op, because a cancelled request must get no response.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace mcpx::mcp {

using json = nlohmann::json;

class ToolCall {
 public:
  virtual ~ToolCall() = default;

  virtual const json& arguments() const = 0;
  // Sends the CallToolResult ({content, structuredContent?, isError?}).
  virtual void Finish(json result) = 0;
  virtual bool finished() const = 0;

  // notifications/progress, sent only when the request carried _meta.progressToken.
  virtual bool wants_progress() const = 0;
  virtual void Progress(double progress, std::optional<double> total, std::string message) = 0;

  // Called once when notifications/cancelled names this request; Finish() after it sends nothing.
  virtual void OnCancel(std::function<void()> cb) = 0;
  virtual bool cancelled() const = 0;

  // notifications/message to the client at `level` (debug, info, warning, error), filtered by the
  // level the client set with logging/setLevel.
  virtual void Log(std::string_view level, std::string message) = 0;
};

using ToolCallPtr = std::shared_ptr<ToolCall>;

class Tool {
 public:
  virtual ~Tool() = default;
  // {name, title, description, inputSchema, outputSchema?, annotations}
  virtual json Definition() const = 0;
  virtual void Call(ToolCallPtr call) = 0;
  // Whether a call may run as a task (long calls: execute_python, install_package).
  virtual bool supports_tasks() const { return false; }

  std::string name() const { return Definition().at("name").get<std::string>(); }
};

// Result helpers: a readable text block always comes first so clients that ignore
// structuredContent still see everything.
json TextContent(std::string text);
json ErrorResult(std::string message);  // {content: [text], isError: true}
json TextResult(std::string text);
json StructuredResult(json structured, std::string text, bool is_error = false);

}  // namespace mcpx::mcp
