#include "util/io.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "util/event_loop.h"

namespace mcpx {

int PollUntil(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    const int64_t left = deadline_ms - EventLoop::NowMs();
    if (left <= 0) return 0;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT32_MAX)));
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return -1;
  }
}

int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = RetryEintr([&] { return ::write(fd, data.data(), data.size()); });
    if (n < 0) return errno;
    if (n == 0) return EIO;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

Result<std::string> ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = RetryEintr([&] { return ::read(fd, buf, sizeof buf); });
    if (n < 0) return ErrnoStatus(Code::kInternal, "read");
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<std::pair<UniqueFd, UniqueFd>> MakePipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(Code::kInternal, "pipe2");
  return std::make_pair(UniqueFd(p[0]), UniqueFd(p[1]));
}

void SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace mcpx
