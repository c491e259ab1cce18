// What the server shares with tool calls, which may finish after their request (and, during
// shutdown, after the server itself): the way out, the client's log level, the calls in flight.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mcp/jsonrpc.h"

namespace mcpx::mcp {

// MCP log levels (RFC 5424 severities), least severe first.
enum class LogLevel { kDebug, kInfo, kNotice, kWarning, kError, kCritical, kAlert, kEmergency };

std::optional<LogLevel> ParseLogLevel(std::string_view name);
std::string_view LogLevelName(LogLevel level);
// "debug, info, ..., emergency": what an error for an unknown level name lists.
std::string LogLevelChoices();

class ToolCallImpl;

class Connection {
 public:
  explicit Connection(MessageSink& sink) : sink_(&sink) {}

  // After this, Send() drops everything (the server is gone).
  void Detach() { sink_ = nullptr; }
  bool attached() const { return sink_ != nullptr; }
  // Never throws.
  void Send(const json& message);

  void set_log_level(LogLevel level) { log_level_ = level; }
  LogLevel log_level() const { return log_level_; }
  // notifications/message, if `level` is at or above what the (legacy) client asked for.
  // 2026-07-28 clients get log messages only per request (ToolCallImpl::Log).
  void Log(LogLevel level, std::string_view logger, std::string message);
  // notifications/message, unfiltered.
  void SendLog(LogLevel level, std::string_view logger, std::string message);

  // tools/call requests not yet finished or cancelled, by serialized id.
  std::map<std::string, std::weak_ptr<ToolCallImpl>>& in_flight() { return in_flight_; }

 private:
  MessageSink* sink_;
  // Until the client sets a level, only problems are worth its attention.
  LogLevel log_level_ = LogLevel::kWarning;
  std::map<std::string, std::weak_ptr<ToolCallImpl>> in_flight_;
};

}  // namespace mcpx::mcp
