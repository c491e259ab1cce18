#include "jail/fd_passing.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace mcpx::jail {

int SendFdToParent(int report_fd, char note, int fd) {
  iovec iov{&note, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(report_fd, &msg, MSG_NOSIGNAL) == 1) return 0;
  return errno != 0 ? errno : EIO;
}

}  // namespace mcpx::jail
