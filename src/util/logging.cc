#include "util/logging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/details/null_mutex.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <string>

#include "util/unique_fd.h"

namespace mcpx {
namespace {

// stderr that never blocks the server. A client that stops reading our stderr pipe (many only
// read it when something fails) would otherwise stop the event loop inside a log call, with
// every session. Records go through a file description of our own opened O_NONBLOCK (opening
// /proc/self/fd/2 gives a pipe or tty a new description, so fd 2's flags, shared with whoever
// else holds it, stay as they are); a record the pipe cannot take whole is dropped and counted,
// and the next one that fits says how many were lost. Where no such description can be opened
// (a socket), fd 2 is written as before.
class NonBlockingStderrSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  NonBlockingStderrSink() {
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) == 0 && !S_ISREG(st.st_mode)) {
      fd_ = UniqueFd(open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    }
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    // One record, one line: messages carry text from sandboxes (a kernel's stderr, preload
    // errors), and a newline in it would let that text forge records of its own.
    for (size_t i = 0; i + 1 < formatted.size(); ++i) {
      if (formatted[i] == '\n') formatted[i] = '|';
    }
    std::string line;
    if (dropped_ > 0) {
      line = "[" + std::to_string(dropped_) + " log lines dropped: stderr was not read]\n";
    }
    line.append(formatted.data(), formatted.size());
    if (WriteAll(line)) {
      dropped_ = 0;
    } else {
      ++dropped_;
    }
  }
  void flush_() override {}

 private:
  // A pipe takes a write of up to PIPE_BUF bytes whole or not at all; a longer record may go
  // partly, and the rest is then written as far as the pipe takes it.
  bool WriteAll(const std::string& s) {
    const int fd = fd_ ? fd_.get() : STDERR_FILENO;
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = write(fd, s.data() + done, s.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (done > 0 && s.back() == '\n') {
        // Half a line is out: end it so the next record starts on its own line, if it fits.
        (void)write(fd, "\n", 1);
      }
      return false;
    }
    return true;
  }

  UniqueFd fd_;
  uint64_t dropped_ = 0;
};

}  // namespace

Status InitLogging(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + std::string(level) +
                           "' (use trace, debug, info, warn, error or off)");
  }
  auto sink = std::make_shared<NonBlockingStderrSink>();
  auto logger = std::make_shared<spdlog::logger>("mcp-executor", std::move(sink));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace mcpx
