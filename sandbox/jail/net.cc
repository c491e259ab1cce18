#include "jail/net.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

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

}  // namespace mcpx::jail
