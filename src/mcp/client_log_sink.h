// Mirrors the server's own log records to the client as notifications/message.
//
// A sink runs inside spdlog's call, and forwarding a record can log in turn (the transport warns
// when the client stops reading). So the sink takes no lock (spdlog's base_sink would take its
// mutex again on that nested call and wedge the server for good), forwards only records made on
// the thread that owns the transport, skips records made while it is forwarding, and bounds
// each record: a sandbox can put arbitrary text into a log line (a preload error, a path).
#pragma once

#include <functional>
#include <string>
#include <thread>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include "mcp/connection.h"

namespace mcpx::mcp {

LogLevel FromSpdlog(spdlog::level::level_enum level);

class ClientLogSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  static constexpr size_t kMaxRecordBytes = 4096;
  using Forward = std::function<void(LogLevel, std::string)>;

  // Forwards records logged on the calling thread to `forward`.
  explicit ClientLogSink(Forward forward)
      : forward_(std::move(forward)), thread_(std::this_thread::get_id()) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  Forward forward_;
  const std::thread::id thread_;
  bool busy_ = false;  // touched only on thread_
};

}  // namespace mcpx::mcp
