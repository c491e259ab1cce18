#include "jail/fd_passing.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "util/io.h"

namespace mcpx::jail {

namespace {

// A message of one iovec with room for one fd.
struct FdMessage {
  iovec iov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};

  FdMessage(void* buf, size_t len) : iov{buf, len} {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
};

}  // namespace

int SendFdToParent(int report_fd, char note, int fd) {
  FdMessage m(&note, 1);
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(report_fd, &m.msg, MSG_NOSIGNAL) == 1) return 0;
  return errno != 0 ? errno : EIO;
}

ssize_t ReceiveWithFd(int sock, void* buf, size_t len, UniqueFd* passed, int flags) {
  FdMessage m(buf, len);
  const ssize_t n = RetryEintr([&] { return recvmsg(sock, &m.msg, flags | MSG_CMSG_CLOEXEC); });
  for (cmsghdr* c = n >= 0 ? CMSG_FIRSTHDR(&m.msg) : nullptr; c != nullptr;
       c = CMSG_NXTHDR(&m.msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int received = -1;
      memcpy(&received, CMSG_DATA(c), sizeof(int));
      passed->reset(received);
    }
  }
  return n;
}

}  // namespace mcpx::jail
