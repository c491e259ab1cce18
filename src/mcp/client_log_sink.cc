#include "mcp/client_log_sink.h"

#include "util/utf8.h"

namespace mcpx::mcp {

LogLevel FromSpdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LogLevel::kDebug;
    case spdlog::level::info:
      return LogLevel::kInfo;
    case spdlog::level::warn:
      return LogLevel::kWarning;
    case spdlog::level::err:
      return LogLevel::kError;
    default:
      return LogLevel::kCritical;
  }
}

void ClientLogSink::sink_it_(const spdlog::details::log_msg& msg) {
  // The thread check comes first: other threads never touch busy_ or the transport.
  if (std::this_thread::get_id() != thread_ || busy_ || !forward_) return;
  busy_ = true;
  try {
    forward_(FromSpdlog(msg.level),
             CapUtf8(std::string(msg.payload.data(), msg.payload.size()), kMaxRecordBytes));
  } catch (...) {
    // A log record that cannot be forwarded is still on stderr; never throw into spdlog.
  }
  busy_ = false;
}

}  // namespace mcpx::mcp
