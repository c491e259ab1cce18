#include "mcp/transport.h"
#include "util/io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>

#include <spdlog/spdlog.h>

namespace mcpx::mcp {
namespace {

constexpr size_t kReadChunk = size_t{64} << 10;
// Reads per readiness event before yielding to the other fds (epoll is level-triggered, so the
// rest is picked up on the next iteration).
constexpr int kReadsPerWakeup = 16;
// Backpressure: a client that sends requests but does not read replies would grow the output
// queue without bound. Past the high mark we stop reading requests until it drains to the low one.
constexpr size_t kPauseInputAbove = size_t{64} << 20;
constexpr size_t kResumeInputBelow = size_t{8} << 20;

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

}  // namespace

LineFramer::LineFramer(size_t max_line, std::function<void(std::string_view)> on_line,
                       std::function<void()> on_oversized)
    : max_line_(max_line), on_line_(std::move(on_line)), on_oversized_(std::move(on_oversized)) {}

void LineFramer::Feed(std::string_view data) {
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (discarding_) return;
      if (buffer_.size() + data.size() > max_line_) {
        // Report as soon as the cap is crossed, not at the newline that may never come.
        buffer_.clear();
        buffer_.shrink_to_fit();
        discarding_ = true;
        on_oversized_();
        return;
      }
      buffer_.append(data);
      return;
    }
    const std::string_view head = data.substr(0, nl);
    data.remove_prefix(nl + 1);
    if (discarding_) {
      discarding_ = false;  // resynchronised at this newline
      continue;
    }
    if (buffer_.empty()) {
      Emit(head);
    } else {
      buffer_.append(head);
      std::string line = std::move(buffer_);
      buffer_.clear();
      Emit(line);
    }
  }
}

void LineFramer::Finish() {
  if (!discarding_ && !buffer_.empty()) {
    std::string line = std::move(buffer_);
    buffer_.clear();
    Emit(line);
  }
  buffer_.clear();
  discarding_ = false;
}

void LineFramer::Emit(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > max_line_) {
    on_oversized_();
    return;
  }
  if (IsBlank(line)) return;
  on_line_(line);
}

StdioTransport::StdioTransport(EventLoop& loop, int in_fd, int out_fd, size_t max_message)
    : loop_(loop),
      in_fd_(in_fd),
      out_fd_(out_fd),
      framer_(
          max_message,
          [this](std::string_view line) {
            if (reading_ && callbacks_.on_message) callbacks_.on_message(line);
          },
          [this] {
            if (reading_ && callbacks_.on_oversized) callbacks_.on_oversized(framer_.max_line());
          }) {}

StdioTransport::~StdioTransport() {
  StopReading();
  if (watching_out_) loop_.Remove(out_fd_);
  // fd 0/1 may share their open file description with the parent (a terminal): give it back as
  // it was.
  if (in_flags_ >= 0) fcntl(in_fd_, F_SETFL, in_flags_);
  if (out_flags_ >= 0) fcntl(out_fd_, F_SETFL, out_flags_);
}

Status StdioTransport::Start(Callbacks callbacks) {
  callbacks_ = std::move(callbacks);
  in_flags_ = fcntl(in_fd_, F_GETFL);
  if (in_flags_ < 0) return ErrnoStatus(Code::kFailedPrecondition, "stdin (fd 0) is not open");
  out_flags_ = fcntl(out_fd_, F_GETFL);
  if (out_flags_ < 0) return ErrnoStatus(Code::kFailedPrecondition, "stdout (fd 1) is not open");
  if (fcntl(in_fd_, F_SETFL, in_flags_ | O_NONBLOCK) != 0 ||
      fcntl(out_fd_, F_SETFL, out_flags_ | O_NONBLOCK) != 0) {
    return ErrnoStatus(Code::kInternal, "cannot make stdin/stdout non-blocking");
  }
  reading_ = true;
  Status st = loop_.Add(in_fd_, EPOLLIN, [this](uint32_t) { OnReadable(); });
  if (st.ok()) {
    watching_in_ = true;
  } else if (st.err() == EPERM) {
    // A regular file (`serve < requests.jsonl`): always readable, epoll refuses it.
    loop_.Post([this] { ReadChunk(); });
  } else {
    reading_ = false;
    return st.Annotate("cannot watch stdin");
  }
  return Status::Ok();
}

void StdioTransport::StopReading() {
  reading_ = false;
  if (watching_in_) {
    loop_.Remove(in_fd_);
    watching_in_ = false;
  }
}

void StdioTransport::OnReadable() {
  for (int i = 0; i < kReadsPerWakeup && reading_ && !input_paused_; ++i) {
    std::array<char, kReadChunk> buf;
    const ssize_t n = RetryEintr([&] { return read(in_fd_, buf.data(), buf.size()); });
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) spdlog::warn("reading stdin failed: {}; shutting down", ErrnoName(errno));
    if (n <= 0) {
      framer_.Finish();
      Close();
      return;
    }
    framer_.Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
}

void StdioTransport::ReadChunk() {
  if (!reading_ || input_paused_) return;
  std::array<char, kReadChunk> buf;
  const ssize_t n = RetryEintr([&] { return read(in_fd_, buf.data(), buf.size()); });
  if (n <= 0) {
    if (n < 0) spdlog::warn("reading stdin failed: {}; shutting down", ErrnoName(errno));
    framer_.Finish();
    Close();
    return;
  }
  framer_.Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
  loop_.Post([this] { ReadChunk(); });
}

void StdioTransport::Close() {
  if (closed_) return;
  closed_ = true;
  StopReading();
  if (callbacks_.on_closed) callbacks_.on_closed();
}

void StdioTransport::Send(const json& message) {
  if (out_broken_) return;
  std::string line = Serialize(message);
  line.push_back('\n');
  queued_bytes_ += line.size();
  queue_.push_back(std::move(line));
  if (queue_.size() == 1) WriteQueued();
  UpdateWriteWatch();
}

void StdioTransport::WriteQueued() {
  while (!queue_.empty() && !out_broken_) {
    const std::string& front = queue_.front();
    const ssize_t n = RetryEintr(
        [&] { return write(out_fd_, front.data() + front_offset_, front.size() - front_offset_); });
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) {
      // EPIPE (SIGPIPE is ignored) or worse: nobody will read what we write.
      spdlog::warn("writing stdout failed: {}; the client is gone, shutting down",
                   ErrnoName(errno));
      out_broken_ = true;
      queue_.clear();
      front_offset_ = 0;
      queued_bytes_ = 0;
      Close();
      return;
    }
    front_offset_ += static_cast<size_t>(n);
    queued_bytes_ -= static_cast<size_t>(n);
    if (front_offset_ == front.size()) {
      queue_.pop_front();
      front_offset_ = 0;
    }
  }
}

void StdioTransport::UpdateInputPause() {
  if (!input_paused_ && reading_ && queued_bytes_ > kPauseInputAbove) {
    spdlog::warn("the client is not reading replies ({} bytes queued); pausing input",
                 queued_bytes_);
    input_paused_ = true;
    if (watching_in_) {
      loop_.Remove(in_fd_);
      watching_in_ = false;
      paused_watch_ = true;
    }
  } else if (input_paused_ && queued_bytes_ < kResumeInputBelow) {
    input_paused_ = false;
    if (!reading_) return;
    if (paused_watch_) {
      paused_watch_ = false;
      if (loop_.Add(in_fd_, EPOLLIN, [this](uint32_t) { OnReadable(); }).ok()) watching_in_ = true;
    } else {
      loop_.Post([this] { ReadChunk(); });
    }
  }
}

void StdioTransport::UpdateWriteWatch() {
  UpdateInputPause();
  const bool want = !queue_.empty() && !out_broken_ && out_pollable_;
  if (want && !watching_out_) {
    Status st = loop_.Add(out_fd_, EPOLLOUT, [this](uint32_t) {
      WriteQueued();
      UpdateWriteWatch();
    });
    if (st.ok()) {
      watching_out_ = true;
    } else {
      // Regular files and /dev/null cannot be polled but never return EAGAIN either.
      out_pollable_ = false;
      WriteQueued();
    }
  } else if (!want && watching_out_) {
    loop_.Remove(out_fd_);
    watching_out_ = false;
  }
}

void StdioTransport::Flush(std::chrono::milliseconds timeout) {
  const int64_t deadline = EventLoop::NowMs() + timeout.count();
  while (!queue_.empty() && !out_broken_) {
    WriteQueued();
    if (queue_.empty() || out_broken_) break;
    const int64_t left = deadline - EventLoop::NowMs();
    if (left <= 0) {
      spdlog::warn("dropping {} bytes of output the client did not read", queued_bytes_);
      break;
    }
    if (PollUntil(out_fd_, POLLOUT, deadline) < 0) break;
  }
  UpdateWriteWatch();
}

}  // namespace mcpx::mcp
