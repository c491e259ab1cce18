#include "jail/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail/mounts.h"

// Debian 12's kernel headers stop at ABI 2; the later rights have fixed values.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

namespace mcpx::jail {
namespace {

// A local copy with the ABI 6 field, whatever the installed header says.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

struct PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

constexpr uint64_t kRead =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr uint64_t kWriteFile = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
constexpr uint64_t kWriteTree = kWriteFile | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                                LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
                                LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REFER;
constexpr uint64_t kSpecial =
    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM;

uint64_t HandledFs(int abi) {
  uint64_t all = kRead | kWriteTree | kSpecial | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                 LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_IOCTL_DEV;
  if (abi < 2) all &= ~LANDLOCK_ACCESS_FS_REFER;
  if (abi < 3) all &= ~LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi < 5) all &= ~LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return all;
}

}  // namespace

int LandlockAbi() {
  const long abi =
      syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

LandlockPlan BuildLandlockPlan(const LandlockRequest& r, int abi) {
  LandlockPlan plan;
  if (!r.enabled || abi <= 0) return plan;
  plan.abi = abi;
  plan.handled_fs = HandledFs(abi);
  if (abi >= 6) {
    plan.scoped =
        LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | (r.scope_signals ? LANDLOCK_SCOPE_SIGNAL : 0);
  }
  auto add = [&plan](std::string path, uint64_t access) {
    plan.rules.push_back({std::move(path), access & plan.handled_fs});
  };
  add("/", kRead);
  // The workspace gets no FIFOs, sockets or symlinks: the server's file tools refuse them, and
  // code that plants them is up to something.
  if (r.workspace) add(kWorkspacePath, kRead | kWriteTree);
  for (const std::string& dir : r.writable) add(dir, kRead | kWriteTree);
  add("/tmp", kRead | kWriteTree | kSpecial);
  add("/dev/shm", kRead | kWriteTree | kSpecial);
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}) {
    add(dev, LANDLOCK_ACCESS_FS_READ_FILE | kWriteFile | LANDLOCK_ACCESS_FS_IOCTL_DEV);
  }
  return plan;
}

ChildFailure LandlockInChild(const LandlockPlan& plan) {
  if (plan.abi <= 0) return ChildOk();
  RulesetAttr attr{plan.handled_fs, 0, plan.scoped};
  // Older ABIs reject a struct that carries fields they do not know.
  const size_t size = plan.abi >= 6 ? sizeof(attr) : plan.abi >= 4 ? 16 : 8;
  const int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (ruleset < 0) return ChildFail("landlock create ruleset");
  ChildFailure f;
  for (const auto& rule : plan.rules) {
    const int fd = open(rule.path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // e.g. a sandbox without /workspace
      f = ChildFail("landlock open rule path");
      break;
    }
    PathBeneathAttr beneath{rule.access, fd};
    const long rc =
        syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0);
    close(fd);
    if (rc != 0) {
      f = ChildFail("landlock add rule");
      break;
    }
  }
  if (!f.failed() && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
    f = ChildFail("landlock restrict self");
  }
  close(ruleset);
  return f;
}

}  // namespace mcpx::jail
