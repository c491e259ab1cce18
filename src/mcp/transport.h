// The stdio transport: one JSON-RPC message per line on fd 0 (in) and fd 1 (out).
//
// Reads are non-blocking and driven by the EventLoop; writes go straight out while the pipe takes
// them and are queued (flushed on EPOLLOUT) when it does not, so a slow client never stalls the
// loop. This is the only code that writes fd 1 in `serve` mode.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "mcp/jsonrpc.h"
#include "util/event_loop.h"
#include "util/status.h"

namespace mcpx::mcp {

// Splits a byte stream into lines. A line longer than `max_line` bytes is reported once through
// on_oversized and skipped up to the next newline without being stored, so memory stays bounded
// by max_line whatever the input. A trailing "\r" is dropped; blank lines are skipped.
class LineFramer {
 public:
  LineFramer(size_t max_line, std::function<void(std::string_view)> on_line,
             std::function<void()> on_oversized);

  void Feed(std::string_view data);
  // End of input: a last line without "\n" still counts.
  void Finish();

  size_t buffered() const { return buffer_.size(); }
  size_t max_line() const { return max_line_; }

 private:
  void Emit(std::string_view line);

  size_t max_line_;
  std::function<void(std::string_view)> on_line_;
  std::function<void()> on_oversized_;
  std::string buffer_;       // the incomplete line so far
  bool discarding_ = false;  // inside an oversized line, waiting for its "\n"
};

class StdioTransport : public MessageSink {
 public:
  static constexpr size_t kMaxMessageBytes = size_t{16} << 20;

  struct Callbacks {
    std::function<void(std::string_view)> on_message;
    std::function<void(size_t limit)> on_oversized;
    // Input reached EOF or output failed (the client went away). Called once.
    std::function<void()> on_closed;
  };

  StdioTransport(EventLoop& loop, int in_fd, int out_fd, size_t max_message = kMaxMessageBytes);
  ~StdioTransport() override;
  StdioTransport(const StdioTransport&) = delete;
  StdioTransport& operator=(const StdioTransport&) = delete;

  // Makes both fds non-blocking (restored on destruction) and starts reading.
  Status Start(Callbacks callbacks);
  // Stops reading; queued output stays queued.
  void StopReading();

  void Send(const json& message) override;

  // Blocks until the queue is written, the reader goes away, or `timeout` passes. For shutdown.
  void Flush(std::chrono::milliseconds timeout);
  size_t queued_bytes() const { return queued_bytes_; }

 private:
  void OnReadable();
  void ReadChunk();  // one read(); for inputs epoll cannot watch (regular files)
  bool Consume(const char* data, size_t n);
  void WriteQueued();
  void UpdateWriteWatch();
  void UpdateInputPause();
  void Close();

  EventLoop& loop_;
  int in_fd_;
  int out_fd_;
  LineFramer framer_;
  Callbacks callbacks_;
  int in_flags_ = -1;  // original fcntl flags, restored on destruction
  int out_flags_ = -1;
  bool reading_ = false;
  bool watching_in_ = false;
  bool watching_out_ = false;
  bool out_pollable_ = true;
  bool out_broken_ = false;
  bool closed_ = false;
  bool input_paused_ = false;  // output queue over the high mark
  bool paused_watch_ = false;  // stdin was epoll-watched when paused
  std::deque<std::string> queue_;
  size_t front_offset_ = 0;  // bytes of queue_.front() already written
  size_t queued_bytes_ = 0;
};

}  // namespace mcpx::mcp
