#include "session/overlay.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>
#include <vector>

#include "jail/userns.h"
#include "util/io.h"
#include "util/unique_fd.h"

namespace mcpx::session {
namespace {

Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot create " + path);
  }
  return Status::Ok();
}

Status MakeLink(const std::string& target, const std::string& path) {
  if (symlink(target.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot create " + path);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> SystemPythonName() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/usr/bin/python3", buf, sizeof(buf) - 1);
  if (n <= 0) {
    return ErrnoStatus(Code::kFailedPrecondition,
                       "cannot read /usr/bin/python3's link (is Debian's python3 installed?)");
  }
  std::string name(buf, static_cast<size_t>(n));
  if (const auto slash = name.rfind('/'); slash != std::string::npos) name.erase(0, slash + 1);
  if (name.rfind("python3.", 0) != 0 || name.size() <= 8) {
    return Status(Code::kFailedPrecondition,
                  "/usr/bin/python3 points at '" + name + "', not at a python3.X interpreter");
  }
  return name;
}

Result<std::string> OverlaySitePackages(const std::string& dir) {
  ASSIGN_OR_RETURN(const std::string python, SystemPythonName());
  return dir + "/lib/" + python + "/site-packages";
}

Status PrepareOverlay(const std::string& dir) {
  RETURN_IF_ERROR(MakeDir(dir));
  const std::string cfg = dir + "/pyvenv.cfg";
  if (access(cfg.c_str(), F_OK) == 0) return Status::Ok();
  ASSIGN_OR_RETURN(const std::string python, SystemPythonName());
  // Every entry, parents first, so the chown below covers what this call made.
  const std::vector<std::string> dirs = {dir + "/bin", dir + "/lib", dir + "/lib/" + python,
                                         dir + "/lib/" + python + "/site-packages"};
  for (const std::string& d : dirs) RETURN_IF_ERROR(MakeDir(d));
  // The system interpreter by its stable name: Python finds pyvenv.cfg next to bin/ without
  // resolving the link, and /usr/bin/python3 is the same file inside every sandbox.
  RETURN_IF_ERROR(MakeLink("/usr/bin/python3", dir + "/bin/python3"));
  RETURN_IF_ERROR(MakeLink("python3", dir + "/bin/python"));
  RETURN_IF_ERROR(MakeLink("lib", dir + "/lib64"));

  ASSIGN_OR_RETURN(const jail::IdMap ids, jail::PlanIdMap(dir));
  if (geteuid() == 0) {
    std::vector<std::string> entries = dirs;
    for (const char* e : {"/bin/python3", "/bin/python", "/lib64"}) entries.push_back(dir + e);
    for (const std::string& e : entries) {
      if (lchown(e.c_str(), ids.host_uid, ids.host_gid) != 0) {
        return ErrnoStatus(Code::kFailedPrecondition,
                           "cannot hand " + e + " to uid " + std::to_string(ids.host_uid));
      }
    }
  }
  // pyvenv.cfg last, through a temporary name: its presence means the venv is whole.
  const std::string text =
      "home = /usr/bin\ninclude-system-site-packages = true\nversion = " + python.substr(6) + "\n";
  const std::string tmp = cfg + ".tmp";
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return ErrnoStatus(Code::kFailedPrecondition, "cannot write " + tmp);
  if (geteuid() == 0 && fchown(fd.get(), ids.host_uid, ids.host_gid) != 0) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot hand " + tmp + " over");
  }
  if (int err = WriteAll(fd.get(), text); err != 0) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot write " + tmp, err);
  }
  fd.reset();
  if (rename(tmp.c_str(), cfg.c_str()) != 0) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot write " + cfg);
  }
  return Status::Ok();
}

}  // namespace mcpx::session
