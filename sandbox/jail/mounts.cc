#include "jail/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "util/io.h"

namespace mcpx::jail {
namespace {

constexpr uint64_t kRoBindAttrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

// Proc files that leak host state or let a process poke the kernel (the OCI runtime defaults).
constexpr const char* kProcMasked[] = {
    "/proc/kcore",      "/proc/keys",        "/proc/key-users",   "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/sysrq-trigger",
    "/proc/kallsyms",   "/proc/kmsg",        "/proc/acpi",        "/proc/scsi",
    "/proc/interrupts", "/proc/mtrr",        "/proc/config.gz",
};
constexpr const char* kProcReadOnly[] = {"/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs",
                                         "/proc/asound"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};

MountStep Step(MountStep::Kind kind, std::string label, std::string target, std::string source = {},
               std::string data = {}, uint64_t attrs = 0) {
  MountStep s;
  s.kind = kind;
  s.label = std::move(label);
  s.target = std::move(target);
  s.source = std::move(source);
  s.data = std::move(data);
  s.attrs = attrs;
  return s;
}

class PlanBuilder {
 public:
  explicit PlanBuilder(MountPlan& plan) : plan_(plan) {}

  void Dir(const std::string& target) {
    if (target.empty() || target == "/" || dirs_.count(target) != 0) return;
    Dir(Parent(target));
    dirs_.insert(target);
    Add(Step(MountStep::Kind::kDir, "mkdir " + target, target));
  }

  void Add(MountStep step) {
    if (step.kind != MountStep::Kind::kDir) Dir(Parent(step.target));
    step.target = plan_.stage + step.target;
    if (step.kind == MountStep::Kind::kMask) step.source = plan_.stage + step.source;
    if (step.kind == MountStep::Kind::kBind || step.kind == MountStep::Kind::kTmpfs ||
        step.kind == MountStep::Kind::kProc) {
      dirs_.insert(step.target.substr(plan_.stage.size()));
    }
    plan_.steps.push_back(std::move(step));
  }

  // Host bind; the target's type (dir or file) follows the source as it is now.
  Status Bind(const std::string& source, const std::string& target, uint64_t attrs, bool nofollow,
              bool optional, const std::string& label) {
    struct stat st {};
    if (lstat(source.c_str(), &st) != 0) {
      // Reported by the child, at the step, like every other setup failure.
      st.st_mode = S_IFDIR;
    }
    MountStep s = Step(MountStep::Kind::kBind, label, target, source, {}, attrs);
    s.nofollow = nofollow;
    s.optional = optional;
    s.directory = S_ISDIR(st.st_mode);
    Add(std::move(s));
    return Status::Ok();
  }

 private:
  static std::string Parent(const std::string& p) {
    const auto slash = p.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : p.substr(0, slash);
  }

  MountPlan& plan_;
  std::set<std::string> dirs_;
};

// Inodes are capped with the bytes (one per 4 KiB, at least 1024): tmpfs would otherwise allow
// half of the host's RAM pages, and each empty file costs kernel memory without using `size`.
std::string TmpfsOptions(uint64_t bytes, const char* mode) {
  const uint64_t inodes = std::max<uint64_t>(1024, bytes / 4096);
  return "size=" + std::to_string(bytes) + ",nr_inodes=" + std::to_string(inodes) + ",mode=" + mode;
}

// A proc of the sandbox's own PID namespace: shows only its processes. `masked`: with the
// masks and read-only folders of kProcMasked and kProcReadOnly.
void AddProc(PlanBuilder& b, bool masked) {
  using K = MountStep::Kind;
  b.Add(Step(K::kProc, "mount /proc", "/proc", {}, {}, MS_NOSUID | MS_NODEV | MS_NOEXEC));
  if (!masked) return;
  for (const char* p : kProcMasked) {
    MountStep s = Step(K::kMask, std::string("mask ") + p, p, "/dev/null");
    s.optional = true;
    b.Add(std::move(s));
  }
  for (const char* p : kProcReadOnly) {
    MountStep s = Step(K::kReadOnly, std::string("read-only ") + p, p);
    s.optional = true;
    b.Add(std::move(s));
  }
}

}  // namespace

MountPlan BuildSessionMountPlan(uint64_t tmp_bytes, uint64_t shm_bytes) {
  MountPlan plan;  // stage "": the targets are the paths themselves
  PlanBuilder b(plan);
  using K = MountStep::Kind;
  // Every target exists in the zygote's (read-only) root: mkdir gives EEXIST, which is fine.
  AddProc(b, /*masked=*/true);
  b.Add(Step(K::kTmpfs, "mount tmpfs /tmp", "/tmp", {}, TmpfsOptions(tmp_bytes, "1777"),
             MS_NOSUID | MS_NODEV | MS_NOEXEC));
  b.Add(Step(K::kTmpfs, "mount tmpfs /dev/shm", "/dev/shm", {}, TmpfsOptions(shm_bytes, "1777"),
             MS_NOSUID | MS_NODEV | MS_NOEXEC));
  return plan;
}

Result<MountPlan> BuildMountPlan(const MountRequest& r) {
  MountPlan plan;
  plan.stage = "/tmp";
  PlanBuilder b(plan);
  using K = MountStep::Kind;

  for (const RootfsEntry& e : r.rootfs) {
    switch (e.kind) {
      case RootfsEntry::Kind::kBind:
        RETURN_IF_ERROR(b.Bind(e.source, e.target, kRoBindAttrs, false, false, "bind " + e.target));
        break;
      case RootfsEntry::Kind::kSymlink:
        b.Add(Step(K::kSymlink, "symlink " + e.target, e.target, e.source));
        break;
      case RootfsEntry::Kind::kFile:
        b.Add(Step(K::kFile, "write " + e.target, e.target, {}, e.content));
        break;
      case RootfsEntry::Kind::kDir:
        b.Dir(e.target);
        break;
    }
  }

  // Folders that users could write on the host: O_NOFOLLOW so a symlink swapped in for the
  // folder is refused instead of followed.
  if (!r.kernel.empty()) {
    RETURN_IF_ERROR(b.Bind(r.kernel, kKernelPath, kRoBindAttrs, true, false,
                           std::string("bind ") + kKernelPath));
  }
  if (!r.packages.empty()) {
    RETURN_IF_ERROR(b.Bind(r.packages, kPackagesPath,
                           r.packages_writable
                               ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                               : kRoBindAttrs,
                           true, false, std::string("bind ") + kPackagesPath));
  }
  if (!r.workspace.empty()) {
    // noexec: uploaded binaries cannot be run directly; `python3 script.py` still works since
    // the interpreter only reads the script.
    RETURN_IF_ERROR(b.Bind(r.workspace, kWorkspacePath,
                           MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, true, false,
                           std::string("bind ") + kWorkspacePath));
  }
  for (const BindMount& m : r.extra_binds) {
    const uint64_t attrs =
        m.writable ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC : kRoBindAttrs;
    RETURN_IF_ERROR(b.Bind(m.source, m.target, attrs, m.writable, m.optional, "bind " + m.target));
  }

  b.Add(Step(K::kTmpfs, "mount tmpfs /tmp", "/tmp", {}, TmpfsOptions(r.tmp_bytes, "1777"),
             MS_NOSUID | MS_NODEV | MS_NOEXEC));

  // /dev: a tmpfs holding binds of the harmless host devices, no tty/pts (no TIOCSTI target).
  b.Add(Step(K::kTmpfs, "mount tmpfs /dev", "/dev", {}, "size=64k,nr_inodes=64,mode=755",
             MS_NOSUID | MS_NOEXEC));
  for (const char* dev : kDevices) {
    const std::string path = std::string("/dev/") + dev;
    RETURN_IF_ERROR(
        b.Bind(path, path, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, true, false, "bind " + path));
  }
  b.Add(Step(K::kSymlink, "symlink /dev/fd", "/dev/fd", "/proc/self/fd"));
  const char* kStdio[] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; ++i) {
    b.Add(Step(K::kSymlink, std::string("symlink /dev/") + kStdio[i],
               std::string("/dev/") + kStdio[i], "/proc/self/fd/" + std::to_string(i)));
  }
  b.Add(Step(K::kTmpfs, "mount tmpfs /dev/shm", "/dev/shm", {}, TmpfsOptions(r.shm_bytes, "1777"),
             MS_NOSUID | MS_NODEV | MS_NOEXEC));
  b.Add(Step(K::kRemountRo, "remount /dev read-only", "/dev", {}, {}, MS_NOSUID | MS_NOEXEC));

  AddProc(b, r.mask_proc);
  return plan;
}

namespace {

ChildFailure OpenBindSource(MountStep& s) {
  s.source_fd = open(s.source.c_str(), O_PATH | O_CLOEXEC | (s.nofollow ? O_NOFOLLOW : 0));
  if (s.source_fd < 0) {
    if (s.optional && errno == ENOENT) return ChildOk();
    return ChildFail(s.label.c_str());
  }
  struct stat st {};
  if (fstat(s.source_fd, &st) != 0) return ChildFail(s.label.c_str());
  // O_PATH|O_NOFOLLOW opens a symlink itself: refuse it, and refuse a type swap since planning.
  if (S_ISLNK(st.st_mode)) return ChildFail(s.label.c_str(), ELOOP);
  if (S_ISDIR(st.st_mode) != s.directory) {
    return ChildFail(s.label.c_str(), s.directory ? ENOTDIR : EISDIR);
  }
  return ChildOk();
}

ChildFailure CreateTarget(const MountStep& s, bool directory) {
  if (directory) {
    if (mkdir(s.target.c_str(), 0755) != 0 && errno != EEXIST) return ChildFail(s.label.c_str());
    return ChildOk();
  }
  const int fd = open(s.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return ChildFail(s.label.c_str());
  close(fd);
  return ChildOk();
}

ChildFailure BindFromFd(MountStep& s) {
  if (s.source_fd < 0) return ChildOk();  // optional and absent
  const int tree = open_tree(s.source_fd, "",
                             AT_EMPTY_PATH | AT_RECURSIVE | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  close(s.source_fd);
  s.source_fd = -1;
  if (tree < 0) return ChildFail(s.label.c_str());
  // Flags go on the detached copy, before anyone can see it, and to every submount.
  struct mount_attr attr {};
  attr.attr_set = s.attrs;
  ChildFailure f;
  if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) != 0) {
    f = ChildFail(s.label.c_str());
  } else if (f = CreateTarget(s, s.directory); !f.failed()) {
    if (move_mount(tree, "", AT_FDCWD, s.target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      f = ChildFail(s.label.c_str());
    }
  }
  close(tree);
  return f;
}

ChildFailure WriteFile(const MountStep& s) {
  const int fd = open(s.target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ChildFail(s.label.c_str());
  size_t done = 0;
  while (done < s.data.size()) {
    const ssize_t n =
        RetryEintr([&] { return write(fd, s.data.data() + done, s.data.size() - done); });
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      close(fd);
      return ChildFail(s.label.c_str(), err);
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return ChildOk();
}

ChildFailure Mask(const MountStep& s) {
  struct stat st {};
  if (lstat(s.target.c_str(), &st) != 0) {
    if (s.optional && errno == ENOENT) return ChildOk();
    return ChildFail(s.label.c_str());
  }
  if (S_ISDIR(st.st_mode)) {
    if (mount("tmpfs", s.target.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=0,mode=555") != 0) {
      return ChildFail(s.label.c_str());
    }
    return ChildOk();
  }
  if (mount(s.source.c_str(), s.target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ChildFail(s.label.c_str());
  }
  return ChildOk();
}

ChildFailure ReadOnlyInPlace(const MountStep& s) {
  if (mount(s.target.c_str(), s.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    if (s.optional && errno == ENOENT) return ChildOk();
    return ChildFail(s.label.c_str());
  }
  if (mount(nullptr, s.target.c_str(), nullptr,
            MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return ChildFail(s.label.c_str());
  }
  return ChildOk();
}

ChildFailure RunStep(MountStep& s) {
  using K = MountStep::Kind;
  switch (s.kind) {
    case K::kDir:
      return CreateTarget(s, true);
    case K::kFile:
      return WriteFile(s);
    case K::kSymlink:
      if (symlink(s.source.c_str(), s.target.c_str()) != 0) return ChildFail(s.label.c_str());
      return ChildOk();
    case K::kBind:
      return BindFromFd(s);
    case K::kTmpfs:
      if (auto f = CreateTarget(s, true); f.failed()) return f;
      if (mount("tmpfs", s.target.c_str(), "tmpfs", s.attrs, s.data.c_str()) != 0) {
        return ChildFail(s.label.c_str());
      }
      return ChildOk();
    case K::kProc:
      if (auto f = CreateTarget(s, true); f.failed()) return f;
      if (mount("proc", s.target.c_str(), "proc", s.attrs, nullptr) != 0) {
        return ChildFail(s.label.c_str());
      }
      return ChildOk();
    case K::kMask:
      return Mask(s);
    case K::kReadOnly:
      return ReadOnlyInPlace(s);
    case K::kRemountRo:
      if (mount(nullptr, s.target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | s.attrs,
                nullptr) != 0) {
        return ChildFail(s.label.c_str());
      }
      return ChildOk();
  }
  return ChildFail(s.label.c_str(), EINVAL);
}

}  // namespace

ChildFailure OpenMountSourcesInChild(MountPlan& plan) {
  for (MountStep& s : plan.steps) {
    if (s.kind != MountStep::Kind::kBind) continue;
    if (auto f = OpenBindSource(s); f.failed()) return f;
  }
  return ChildOk();
}

ChildFailure SessionMountsInChild(MountPlan& plan) {
  for (MountStep& s : plan.steps) {
    if (auto f = RunStep(s); f.failed()) return f;
  }
  return ChildOk();
}

ChildFailure MountsInChild(MountPlan& plan) {
  // Private propagation first: nothing we mount may reach the host's namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ChildFail("make mounts private");
  }
  if (mount("tmpfs", plan.stage.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m") != 0) {
    return ChildFail("mount root tmpfs");
  }
  for (MountStep& s : plan.steps) {
    if (auto f = RunStep(s); f.failed()) return f;
  }
  // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only ours.
  if (chdir(plan.stage.c_str()) != 0) return ChildFail("chdir new root");
  if (syscall(SYS_pivot_root, ".", ".") != 0) return ChildFail("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return ChildFail("detach old root");
  if (chdir("/") != 0) return ChildFail("chdir /");
  if (mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) != 0) {
    return ChildFail("remount root read-only");
  }
  return ChildOk();
}

}  // namespace mcpx::jail
