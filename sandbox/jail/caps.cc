#include "jail/caps.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>

namespace mcpx::jail {

Result<int> LastCapFromParent() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = -1;
  if (!(in >> last) || last < 0) {
    // Older kernels lack the file; CAP_CHECKPOINT_RESTORE (40) is the last one known to us.
    return 40;
  }
  return last;
}

ChildFailure DropBoundingAndAmbientInChild(int last_cap) {
  for (int cap = 0; cap <= last_cap; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return ChildFail("drop bounding capabilities");
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return ChildFail("clear ambient capabilities");
  }
  return ChildOk();
}

ChildFailure ClearCapsInChild() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) return ChildFail("clear capabilities");
  return ChildOk();
}

}  // namespace mcpx::jail
