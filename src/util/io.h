// EINTR-safe I/O.
//
// RetryEintr is header-only and neither allocates nor throws: a post-fork child may use it (see
// sandbox/jail/child_pipeline.h). ReadAll builds a std::string and a Status: parent side only.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx {

// Calls f() again while it returns -1 with errno EINTR; returns the last result, errno intact.
// For syscalls that are safe to repeat as they are (read, write, recv, waitpid, ...); a poll with
// a deadline, whose timeout must shrink on each retry, is PollUntil.
template <class F>
auto RetryEintr(F f) {
  auto r = f();
  while (r == -1 && errno == EINTR) r = f();
  return r;
}

// Waits until `fd` has one of `events` (or HUP/ERR) or the deadline passes, through EINTR with
// the timeout recomputed. The deadline is on EventLoop::NowMs()'s clock (monotonic ms).
// Returns 1 when the fd is ready, 0 when the deadline passed, -1 on error (errno set).
int PollUntil(int fd, short events, int64_t deadline_ms);

// Writes all of `data`, through EINTR and short writes. Returns 0, or the errno of the write
// that failed (EIO for a write that wrote nothing). Allocates nothing.
int WriteAll(int fd, std::string_view data);

// Reads fd to EOF. On failure the Status carries the read's errno (message "read").
Result<std::string> ReadAll(int fd);

// A close-on-exec pipe: {read end, write end}.
Result<std::pair<UniqueFd, UniqueFd>> MakePipe();

// Adds O_NONBLOCK to the fd's status flags (best effort: an fd that refuses stays as it was).
void SetNonBlocking(int fd);

}  // namespace mcpx
