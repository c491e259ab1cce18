#include "mcp/connection.h"

#include <array>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "util/text.h"

namespace mcpx::mcp {
namespace {

constexpr std::array<std::string_view, 8> kLevelNames = {
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (size_t i = 0; i < kLevelNames.size(); ++i) {
    if (kLevelNames[i] == name) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view LogLevelName(LogLevel level) { return kLevelNames[static_cast<size_t>(level)]; }

std::string LogLevelChoices() {
  return Join(std::vector<std::string>(kLevelNames.begin(), kLevelNames.end()), ", ");
}

void Connection::Send(const json& message) {
  if (sink_ == nullptr) return;
  try {
    sink_->Send(message);
  } catch (const std::exception& e) {
    spdlog::error("cannot send a message: {}", e.what());
  } catch (...) {
    spdlog::error("cannot send a message: unknown exception");
  }
}

void Connection::Log(LogLevel level, std::string_view logger, std::string message) {
  if (level < log_level_) return;
  SendLog(level, logger, std::move(message));
}

void Connection::SendLog(LogLevel level, std::string_view logger, std::string message) {
  Send(MakeNotification(
      "notifications/message",
      json{{"level", LogLevelName(level)}, {"logger", logger}, {"data", std::move(message)}}));
}

}  // namespace mcpx::mcp
