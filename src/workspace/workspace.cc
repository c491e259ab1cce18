#include "workspace/workspace.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "util/defer.h"
#include "util/io.h"
#include "util/random.h"
#include "workspace/errors.h"
#include "workspace/path.h"

namespace mcpx::workspace {
namespace {

constexpr uint64_t kResolveFlags = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
// openat2 returns EAGAIN when a concurrent rename could have let `..` escape; retrying is the
// documented answer. Our paths carry no `..`, so this is rare.
constexpr int kEagainRetries = 16;

long Openat2(int dirfd, const char* path, int flags, uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(static_cast<unsigned>(flags));
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

std::vector<std::string_view> SplitPath(std::string_view rel) {
  std::vector<std::string_view> parts;
  if (rel == ".") return parts;
  while (!rel.empty()) {
    const size_t slash = rel.find('/');
    parts.push_back(rel.substr(0, slash));
    rel.remove_prefix(slash == std::string_view::npos ? rel.size() : slash + 1);
  }
  return parts;
}

Status WriteAllOf(int fd, std::string_view data, const std::string& what) {
  const int err = WriteAll(fd, data);
  if (err == 0) return Status::Ok();
  return ErrnoStatus(
      err == ENOSPC || err == EDQUOT || err == EFBIG ? Code::kResourceExhausted : Code::kInternal,
      "cannot write " + what, err);
}

// Bytes [offset, offset + len) via pread; stops early at end of file.
Result<std::string> PreadRange(int fd, uint64_t offset, uint64_t len, const std::string& rel) {
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    const ssize_t n = RetryEintr(
        [&] { return ::pread(fd, out.data() + got, len - got, static_cast<off_t>(offset + got)); });
    if (n < 0) return ErrnoStatus(Code::kInternal, "cannot read " + Q(rel));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

// Appends in place: the cost is that of `data`, whatever the file holds (a copy + fsync of a
// sandbox-made 512 MiB sparse file blocked the event loop for seconds). `dirfd` is the parent
// opened without following symlinks, `name` one component, `seen` its lstat.
Result<WriteResult> AppendInPlace(int dirfd, const std::string& name, const std::string& rel,
                                  const struct stat& seen, std::string_view data) {
  // O_NOFOLLOW: a symlink swapped in since the lstat is refused. O_NONBLOCK: nothing makes the
  // open wait in the event loop: a FIFO swapped in fails with ENXIO without a reader (the fstat
  // below refuses it with one), and a lease the sandbox holds on its file fails it with
  // EWOULDBLOCK instead of waiting out the lease-break time.
  UniqueFd fd(::openat(dirfd, name.c_str(),
                       O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) {
    if (errno == ELOOP) {
      return SymlinkRefused(rel);
    }
    return ResolveError(rel, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(Code::kInternal, "cannot stat " + Q(rel));
  if (!S_ISREG(st.st_mode)) return NotRegular(rel, FileTypeFromMode(st.st_mode));
  if (st.st_dev != seen.st_dev || st.st_ino != seen.st_ino) {
    return Status(Code::kUnavailable, Q(rel) + " changed while it was being opened; try again");
  }
  // Writing in place reaches every name of the inode: a hard link made on the host to a file
  // outside the workspace must not be written through (a replacing write gives this name a new
  // inode instead, see the header).
  if (st.st_nlink > 1) {
    return FailedPrecondition(Q(rel) + " has " + std::to_string(st.st_nlink) +
                              " hard links; append changes the file in place, which would change "
                              "the other names too. Write the whole content with append=false, "
                              "which replaces only this name");
  }
  const off_t old_size = st.st_size;
  if (Status s = WriteAllOf(fd.get(), data, Q(rel)); !s.ok()) {
    // Nothing half-written: take back what part of `data` landed.
    if (::ftruncate(fd.get(), old_size) != 0) {
      spdlog::error("append to '{}' failed and the file could not be cut back to {} bytes: {}", rel,
                    old_size, ErrnoName(errno));
    }
    return s;
  }
  // As a replacing write does: no set-id bits survive a write by the server (the kernel would
  // clear them on a write by an unprivileged server, but not on one by root).
  if ((st.st_mode & (S_ISUID | S_ISGID)) != 0) (void)::fchmod(fd.get(), st.st_mode & 0777);
  struct stat after {};
  WriteResult result;
  result.path = rel;
  result.bytes_written = data.size();
  result.size = ::fstat(fd.get(), &after) == 0 ? static_cast<uint64_t>(after.st_size)
                                               : static_cast<uint64_t>(old_size) + data.size();
  result.created = false;
  return result;
}

std::string RandomSuffix() {
  // Uniqueness, not secrecy, matters here (O_EXCL catches collisions).
  if (auto hex = RandomHex(8)) return *hex;
  return std::to_string(std::rand());
}

}  // namespace

std::string_view FileTypeName(FileType type) {
  switch (type) {
    case FileType::kFile:
      return "file";
    case FileType::kDirectory:
      return "directory";
    case FileType::kSymlink:
      return "symlink";
    case FileType::kFifo:
      return "fifo";
    case FileType::kSocket:
      return "socket";
    case FileType::kDevice:
      return "device";
    case FileType::kOther:
      break;
  }
  return "other";
}

std::string_view FileTypeArticle(FileType type) {
  switch (type) {
    case FileType::kFile:
      return "a regular file";
    case FileType::kDirectory:
      return "a directory";
    case FileType::kSymlink:
      return "a symlink";
    case FileType::kFifo:
      return "a FIFO";
    case FileType::kSocket:
      return "a socket";
    case FileType::kDevice:
      return "a device node";
    case FileType::kOther:
      break;
  }
  return "a special file";
}

FileType FileTypeFromMode(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return FileType::kFile;
    case S_IFDIR:
      return FileType::kDirectory;
    case S_IFLNK:
      return FileType::kSymlink;
    case S_IFIFO:
      return FileType::kFifo;
    case S_IFSOCK:
      return FileType::kSocket;
    case S_IFCHR:
    case S_IFBLK:
      return FileType::kDevice;
    default:
      return FileType::kOther;
  }
}

Result<std::shared_ptr<Workspace>> Workspace::Open(const std::string& dir, OpenOptions options) {
  if (dir.empty()) return InvalidArgument("workspace path is empty");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno == EACCES ? Code::kPermissionDenied : Code::kFailedPrecondition,
                       "cannot create workspace folder '" + dir + "'");
  }
  char* real = ::realpath(dir.c_str(), nullptr);
  if (real == nullptr) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot resolve workspace folder '" + dir + "'");
  }
  std::string root(real);
  std::free(real);
  UniqueFd fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot open workspace folder '" + root + "'");
  }

  Resolver resolver = options.resolver;
  if (resolver != Resolver::kWalk) {
    const long probe = Openat2(fd.get(), ".", O_PATH | O_CLOEXEC, kResolveFlags);
    if (probe >= 0) {
      ::close(static_cast<int>(probe));
      resolver = Resolver::kOpenat2;
    } else if (options.resolver == Resolver::kOpenat2) {
      return ErrnoStatus(Code::kFailedPrecondition, "openat2 with RESOLVE_BENEATH is unavailable");
    } else {
      // ENOSYS before Linux 5.6, EINVAL/E2BIG if a seccomp filter or old kernel rejects it.
      spdlog::warn("openat2 unavailable ({}); workspace symlinks will not be followed",
                   ErrnoName(errno));
      resolver = Resolver::kWalk;
    }
  }
  return std::shared_ptr<Workspace>(new Workspace(std::move(root), std::move(fd), resolver));
}

Result<std::string> Workspace::Confine(std::string_view user_path) const {
  return CleanPath(user_path, root_);
}

Result<UniqueFd> Workspace::Resolve(const std::string& rel, int flags) const {
  if (resolver_ == Resolver::kWalk) return ResolveWalk(rel, flags);
  for (int attempt = 0;; ++attempt) {
    const long fd = Openat2(root_fd_.get(), rel.c_str(), flags | O_CLOEXEC, kResolveFlags);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || (errno == EAGAIN && attempt < kEagainRetries)) continue;
    return ResolveError(rel, errno);
  }
}

Result<UniqueFd> Workspace::ResolveWalk(const std::string& rel, int flags) const {
  const auto parts = SplitPath(rel);
  UniqueFd cur(::openat(root_fd_.get(), ".", O_PATH | O_CLOEXEC));
  if (!cur) return ResolveError(rel, errno);
  std::string walked;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string name(parts[i]);
    walked = JoinPath(walked, name);
    const bool last = i + 1 == parts.size();
    const int open_flags = (last ? flags : O_PATH) | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd next(::openat(cur.get(), name.c_str(), open_flags));
    if (!next) {
      if (errno == ELOOP) {
        return Status(Code::kPermissionDenied,
                      "path " + Q(rel) + ": " + Q(walked) +
                          " is a symlink, and symlinks are not followed (this kernel lacks "
                          "openat2)",
                      ELOOP);
      }
      return ResolveError(rel, errno);
    }
    struct stat st {};
    if (::fstat(next.get(), &st) != 0) return ResolveError(rel, errno);
    if (S_ISLNK(st.st_mode)) {
      return Status(Code::kPermissionDenied,
                    "path " + Q(rel) + ": " + Q(walked) +
                        " is a symlink, and symlinks are not followed (this kernel lacks openat2)",
                    ELOOP);
    }
    if (!last && !S_ISDIR(st.st_mode)) return ResolveError(rel, ENOTDIR);
    cur = std::move(next);
  }
  if (parts.empty() && (flags & O_PATH) == 0) {
    UniqueFd reopened(::openat(cur.get(), ".", flags | O_CLOEXEC));
    if (!reopened) return ResolveError(rel, errno);
    return reopened;
  }
  return cur;
}

Result<FileRead> Workspace::Read(std::string_view user_path, uint64_t offset,
                                 uint64_t limit) const {
  ASSIGN_OR_RETURN(std::string rel, Confine(user_path));
  // Check the type on an O_PATH fd first: opening a FIFO could block and opening a device runs
  // its driver. Only then open for reading, and make sure it is still the same regular file.
  ASSIGN_OR_RETURN(UniqueFd pfd, Resolve(rel, O_PATH));
  struct stat st {};
  if (::fstat(pfd.get(), &st) != 0) return ErrnoStatus(Code::kInternal, "cannot stat " + Q(rel));
  if (!S_ISREG(st.st_mode)) return NotRegular(rel, FileTypeFromMode(st.st_mode));

  ASSIGN_OR_RETURN(UniqueFd fd, Resolve(rel, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  struct stat st2 {};
  if (::fstat(fd.get(), &st2) != 0) return ErrnoStatus(Code::kInternal, "cannot stat " + Q(rel));
  if (!S_ISREG(st2.st_mode)) return NotRegular(rel, FileTypeFromMode(st2.st_mode));
  if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
    return Status(Code::kUnavailable, Q(rel) + " changed while it was being opened; try again");
  }

  FileRead out;
  out.path = rel;
  out.size = static_cast<uint64_t>(st2.st_size);
  out.offset = offset;
  ASSIGN_OR_RETURN(out.head, PreadRange(fd.get(), 0, 16, rel));
  if (offset < out.size && limit > 0) {
    ASSIGN_OR_RETURN(out.data,
                     PreadRange(fd.get(), offset, std::min(limit, out.size - offset), rel));
  }
  return out;
}

Result<UniqueFd> Workspace::OpenParentForWrite(const std::string& rel_dir, bool create) const {
  UniqueFd cur(::openat(root_fd_.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!cur) return ErrnoStatus(Code::kInternal, "cannot open the workspace root");
  std::string walked;
  for (auto part : SplitPath(rel_dir)) {
    const std::string name(part);
    walked = JoinPath(walked, name);
    UniqueFd next(::openat(cur.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus(
            errno == ENOSPC || errno == EDQUOT ? Code::kResourceExhausted : Code::kPermissionDenied,
            "cannot create folder " + Q(walked));
      }
      if (::geteuid() == 0) {
        // A root server creates folders the sandbox user must be able to write: give them to
        // the owner of the folder they are created in (the workspace owner).
        struct stat parent {};
        if (::fstat(cur.get(), &parent) == 0) {
          (void)::fchownat(cur.get(), name.c_str(), parent.st_uid, parent.st_gid,
                           AT_SYMLINK_NOFOLLOW);
        }
      }
      next.reset(::openat(cur.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!next) {
      if (errno == ENOENT) return NotFound("folder " + Q(walked) + " does not exist");
      return ErrnoStatus(Code::kPermissionDenied, "cannot open folder " + Q(walked));
    }
    struct stat st {};
    if (::fstat(next.get(), &st) != 0) {
      return ErrnoStatus(Code::kInternal, "cannot stat " + Q(walked));
    }
    if (S_ISLNK(st.st_mode)) {
      return PermissionDenied(Q(walked) + " is a symlink; writes never follow symlinks");
    }
    if (!S_ISDIR(st.st_mode)) {
      return InvalidArgument(Q(walked) + " exists and is " +
                             std::string(FileTypeArticle(FileTypeFromMode(st.st_mode))) +
                             ", not a folder");
    }
    cur = std::move(next);
  }
  return cur;
}

Status Workspace::Remove(std::string_view user_path) const {
  ASSIGN_OR_RETURN(std::string rel, Confine(user_path));
  if (rel == ".") return InvalidArgument("cannot remove the workspace folder itself");
  const size_t slash = rel.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : rel.substr(0, slash);
  const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  ASSIGN_OR_RETURN(UniqueFd dirfd, OpenParentForWrite(dir, /*create=*/false));
  if (::unlinkat(dirfd.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return NotFound(Q(rel) + " does not exist");
    if (errno == EISDIR) return InvalidArgument(Q(rel) + " is a folder, not a file");
    return ErrnoStatus(Code::kPermissionDenied, "cannot remove " + Q(rel));
  }
  return Status::Ok();
}

Result<WriteResult> Workspace::WriteFileAtomic(std::string_view user_path, std::string_view data,
                                               WriteOptions options) const {
  ASSIGN_OR_RETURN(std::string rel, Confine(user_path));
  if (rel == ".") return InvalidArgument("cannot write to '.': it is the workspace folder itself");
  const size_t slash = rel.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : rel.substr(0, slash);
  const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  ASSIGN_OR_RETURN(UniqueFd dirfd, OpenParentForWrite(dir, options.create_parents));

  struct stat dir_st {};
  if (::fstat(dirfd.get(), &dir_st) != 0)
    return ErrnoStatus(Code::kInternal, "cannot stat " + Q(dir));
  struct stat old {};
  bool exists = true;
  if (::fstatat(dirfd.get(), name.c_str(), &old, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return ErrnoStatus(Code::kInternal, "cannot stat " + Q(rel));
    exists = false;
  }
  if (exists && S_ISLNK(old.st_mode)) {
    return SymlinkRefused(rel);
  }
  if (exists && !S_ISREG(old.st_mode)) return NotRegular(rel, FileTypeFromMode(old.st_mode));
  if (options.append && exists) return AppendInPlace(dirfd.get(), name, rel, old, data);

  // Temp file in the same folder so renameat is atomic; a dot name keeps it out of casual view and
  // O_EXCL|O_NOFOLLOW guarantees we created it (nothing planted under that name is reused).
  UniqueFd tmp;
  std::string tmp_name;
  for (int attempt = 0; attempt < 8 && !tmp; ++attempt) {
    tmp_name = "." + name.substr(0, 200) + ".mcpx-" + RandomSuffix() + ".tmp";
    tmp.reset(::openat(dirfd.get(), tmp_name.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!tmp && errno != EEXIST) break;
  }
  if (!tmp) {
    return ErrnoStatus(
        errno == ENOSPC || errno == EDQUOT ? Code::kResourceExhausted : Code::kPermissionDenied,
        "cannot create a temporary file in " + Q(dir));
  }
  bool committed = false;
  Defer cleanup([&] {
    if (!committed) ::unlinkat(dirfd.get(), tmp_name.c_str(), 0);
  });

  RETURN_IF_ERROR(WriteAllOf(tmp.get(), data, Q(rel)));

  // Keep an existing file's permissions (minus set-id bits) and owner; a new file gets 0644 and,
  // when the server runs as root, the folder's owner so that the sandbox user can change it.
  const mode_t mode = exists ? (old.st_mode & 0777) : 0644;
  if (::fchmod(tmp.get(), mode) != 0) return ErrnoStatus(Code::kInternal, "cannot chmod " + Q(rel));
  if (::geteuid() == 0) {
    const uid_t uid = exists ? old.st_uid : dir_st.st_uid;
    const gid_t gid = exists ? old.st_gid : dir_st.st_gid;
    if (::fchown(tmp.get(), uid, gid) != 0) {
      return ErrnoStatus(Code::kInternal, "cannot chown " + Q(rel));
    }
  }
  if (::fsync(tmp.get()) != 0) {
    return ErrnoStatus(
        errno == ENOSPC || errno == EDQUOT ? Code::kResourceExhausted : Code::kInternal,
        "cannot flush " + Q(rel));
  }
  // renameat replaces the directory entry, whatever it is now: if sandboxed code swapped in a
  // symlink since the check above, the symlink is replaced, never written through.
  if (::renameat(dirfd.get(), tmp_name.c_str(), dirfd.get(), name.c_str()) != 0) {
    return ErrnoStatus(errno == EISDIR ? Code::kInvalidArgument : Code::kInternal,
                       "cannot move the new content into place at " + Q(rel));
  }
  committed = true;
  UniqueFd dir_rd(::openat(dirfd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_rd || ::fsync(dir_rd.get()) != 0) {
    spdlog::warn("cannot fsync the folder of '{}': {}", rel, ErrnoName(errno));
  }

  WriteResult result;
  result.path = rel;
  result.bytes_written = data.size();
  result.size = data.size();
  result.created = !exists;
  return result;
}

}  // namespace mcpx::workspace
