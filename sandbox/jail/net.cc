#include "jail/net.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "jail/fd_passing.h"

namespace mcpx::jail {

ChildFailure LoopbackUpInChild() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ChildFail("bring up lo");
  struct ifreq req {};
  memcpy(req.ifr_name, "lo", 3);
  ChildFailure f;
  if (ioctl(fd, SIOCGIFFLAGS, &req) != 0) {
    f = ChildFail("bring up lo");
  } else {
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    if (ioctl(fd, SIOCSIFFLAGS, &req) != 0) f = ChildFail("bring up lo");
  }
  close(fd);
  return f;
}

ChildFailure ListenerToParentInChild(uint16_t port, int report_fd) {
  if (port == 0) return ChildOk();
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ChildFail("listen on the proxy port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ChildFailure f;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 64) != 0) {
    f = ChildFail("listen on the proxy port");
  } else if (SendFdToParent(report_fd, kListenerNote, fd) != 0) {
    f = ChildFail("send the proxy port");
  }
  close(fd);  // the message holds the socket until the parent receives it
  return f;
}

}  // namespace mcpx::jail
