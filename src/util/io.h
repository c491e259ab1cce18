// EINTR-safe I/O.
//
// RetryEintr is header-only and neither allocates nor throws: a post-fork child may use it (see
// sandbox/jail/child_pipeline.h). ReadAll builds a std::string and a Status: parent side only.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>

#include "util/status.h"

namespace mcpx {

// Calls f() again while it returns -1 with errno EINTR; returns the last result, errno intact.
// For syscalls that are safe to repeat as they are (read, write, recv, waitpid, ...), not for a
// poll with a deadline, whose timeout must shrink on each retry.
template <class F>
auto RetryEintr(F f) {
  auto r = f();
  while (r == -1 && errno == EINTR) r = f();
  return r;
}

// Writes all of `data`, through EINTR and short writes. Returns 0, or the errno of the write
// that failed (EIO for a write that wrote nothing). Allocates nothing.
int WriteAll(int fd, std::string_view data);

// Reads fd to EOF. On failure the Status carries the read's errno (message "read").
Result<std::string> ReadAll(int fd);

}  // namespace mcpx
