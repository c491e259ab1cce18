#include "jail/userns.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string_view>

#include <spdlog/spdlog.h>

#include "util/unique_fd.h"

namespace mcpx::jail {
namespace {

Status WriteProcFile(pid_t pid, const char* name, std::string_view value) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(Code::kFailedPrecondition, "cannot open " + path);
  // One write: the kernel accepts an id map only in a single write(2).
  if (write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    const int err = errno;
    return ErrnoStatus(Code::kFailedPrecondition,
                       "cannot write '" + std::string(value.substr(0, value.size() - 1)) + "' to " +
                           path + " (user namespaces restricted? run `mcp-executor doctor`)",
                       err);
  }
  return Status::Ok();
}

}  // namespace

Result<IdMap> PlanIdMap(const std::string& workspace) {
  IdMap ids;
  if (geteuid() != 0) {
    ids.host_uid = geteuid();
    ids.host_gid = getegid();
    return ids;
  }
  ids.drop_groups = true;
  ids.host_uid = kDedicatedHostId;
  ids.host_gid = kDedicatedHostId;
  if (workspace.empty()) return ids;
  struct stat st {};
  // lstat: a symlink is refused by the child's bind step (O_NOFOLLOW), never chowned through.
  if (lstat(workspace.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    // Let the child's bind step report the missing or wrong folder with its name.
    return ids;
  }
  if (st.st_uid != 0) {
    ids.host_uid = st.st_uid;
    ids.host_gid = st.st_gid == 0 ? st.st_uid : st.st_gid;
    return ids;
  }
  // Root-owned workspace: hand the folder (not its content) to the dedicated id. An idmapped
  // mount would leave ownership alone but would write the code's files as host root, setuid bits
  // included; a chown to an id nobody else uses keeps every created file unprivileged.
  UniqueFd dir(open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir || fchown(dir.get(), kDedicatedHostId, kDedicatedHostId) != 0) {
    return ErrnoStatus(Code::kPermissionDenied,
                       "cannot hand the root-owned workspace " + workspace + " to uid " +
                           std::to_string(kDedicatedHostId) +
                           " (pass --workspace a folder owned by an unprivileged user)");
  }
  spdlog::info("workspace {} was owned by root; now owned by uid {} (the sandbox's host identity)",
               workspace, kDedicatedHostId);
  return ids;
}

Status UserNsFromParent(pid_t pid, const IdMap& ids) {
  // "deny" first: an unprivileged writer may only write gid_map after it (user_namespaces(7)).
  if (!ids.drop_groups) RETURN_IF_ERROR(WriteProcFile(pid, "setgroups", "deny\n"));
  RETURN_IF_ERROR(
      WriteProcFile(pid, "uid_map",
                    std::to_string(ids.inside_uid) + " " + std::to_string(ids.host_uid) + " 1\n"));
  RETURN_IF_ERROR(
      WriteProcFile(pid, "gid_map",
                    std::to_string(ids.inside_gid) + " " + std::to_string(ids.host_gid) + " 1\n"));
  return Status::Ok();
}

ChildFailure UserNsInChild(const IdMap& ids) {
  // Before any file is created: new inodes need a mapped fsuid/fsgid (else EOVERFLOW). Root of
  // the namespace (uid 0) is unmapped, so this setuid does not clear the capabilities that the
  // mount steps still need (cap_emulate_setxuid only drops them when leaving the ns root).
  // Raw syscalls, not glibc's wrappers: those broadcast the change to every thread glibc lists,
  // and in this raw clone of a threaded server the list names the server's other threads, which
  // never answer (a thread copied before it first ran hung the spawn for good). The kernel's
  // credentials are per thread, and this process has one.
  if (ids.drop_groups && syscall(SYS_setgroups, 0, nullptr) != 0) return ChildFail("setgroups");
  if (syscall(SYS_setresgid, ids.inside_gid, ids.inside_gid, ids.inside_gid) != 0) {
    return ChildFail("setresgid");
  }
  if (syscall(SYS_setresuid, ids.inside_uid, ids.inside_uid, ids.inside_uid) != 0) {
    return ChildFail("setresuid");
  }
  return ChildOk();
}

}  // namespace mcpx::jail
