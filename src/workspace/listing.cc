// Workspace::List: folders the sandbox may have filled with millions of entries, listed in
// bounded memory without following a symlink.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <queue>
#include <string>
#include <vector>

#include "util/io.h"
#include "workspace/errors.h"
#include "workspace/path.h"
#include "workspace/workspace.h"

namespace mcpx::workspace {

namespace {

struct Walker {
  const ListOptions& options;
  Listing& out;

  // The `keep` first names of the open directory `fd` in byte order. A folder may hold millions
  // of entries (sandboxed code writes the workspace); only what the listing can still take is
  // held, in a max-heap, so memory stays bounded by max_entries. `dropped`: some were left out.
  static std::vector<std::string> FirstNames(int fd, size_t keep, bool* dropped) {
    std::priority_queue<std::string> kept;
    std::array<char, 32768> buf{};
    for (;;) {
      const long n =
          RetryEintr([&] { return syscall(SYS_getdents64, fd, buf.data(), buf.size()); });
      if (n <= 0) break;
      for (long pos = 0; pos < n;) {
        dirent64 d{};
        std::memcpy(&d, buf.data() + pos, std::min(sizeof d, static_cast<size_t>(n - pos)));
        const char* name = buf.data() + pos + offsetof(dirent64, d_name);
        pos += d.d_reclen;
        if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
        if (kept.size() < keep) {
          kept.emplace(name);
          continue;
        }
        *dropped = true;
        if (keep > 0 && kept.top() > name) {
          kept.pop();
          kept.emplace(name);
        }
      }
    }
    std::vector<std::string> names(kept.size());
    for (size_t i = names.size(); i-- > 0; kept.pop()) names[i] = kept.top();
    return names;
  }

  // Lists the open directory `fd` whose relative path is `prefix`; descends when recursive.
  void Walk(int fd, const std::string& prefix, size_t depth) {
    bool dropped = false;
    std::vector<std::pair<std::string, bool>> names;  // name, is a directory
    for (auto& name : FirstNames(fd, options.max_entries - out.entries.size(), &dropped)) {
      names.emplace_back(std::move(name), false);
    }
    if (dropped) out.truncated = true;
    for (auto& [name, is_dir] : names) {
      if (out.entries.size() >= options.max_entries) {
        out.truncated = true;
        return;
      }
      struct stat st {};
      if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
      Entry e;
      e.path = JoinPath(prefix, name);
      e.type = FileTypeFromMode(st.st_mode);
      e.size = static_cast<uint64_t>(st.st_size);
      e.mtime = st.st_mtim.tv_sec;
      if (e.type == FileType::kSymlink) {
        std::array<char, PATH_MAX> target{};
        const ssize_t len = ::readlinkat(fd, name.c_str(), target.data(), target.size());
        if (len > 0) e.target.assign(target.data(), static_cast<size_t>(len));
      }
      is_dir = e.type == FileType::kDirectory;
      out.entries.push_back(std::move(e));
    }
    if (!options.recursive) return;
    for (const auto& [name, is_dir] : names) {
      if (!is_dir) continue;
      if (out.entries.size() >= options.max_entries) {
        out.truncated = true;
        return;
      }
      if (depth + 1 > options.max_depth) {
        ++out.skipped_deep;
        continue;
      }
      // O_NOFOLLOW: a folder swapped for a symlink since the stat is not entered.
      UniqueFd child(
          ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!child) continue;
      Walk(child.get(), JoinPath(prefix, name), depth + 1);
    }
  }
};

}  // namespace

Result<Listing> Workspace::List(std::string_view user_path, ListOptions options) const {
  ASSIGN_OR_RETURN(std::string rel, Confine(user_path));
  ASSIGN_OR_RETURN(UniqueFd pfd, Resolve(rel, O_PATH));
  struct stat st {};
  if (::fstat(pfd.get(), &st) != 0) return ErrnoStatus(Code::kInternal, "cannot stat " + Q(rel));
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument(Q(rel) + " is " +
                           std::string(FileTypeArticle(FileTypeFromMode(st.st_mode))) +
                           ", not a folder (use read_file for files)");
  }
  UniqueFd fd(::openat(pfd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ResolveError(rel, errno);

  Listing out;
  out.path = rel;
  Walker{options, out}.Walk(fd.get(), rel == "." ? "" : rel, 0);
  std::sort(out.entries.begin(), out.entries.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  return out;
}

}  // namespace mcpx::workspace
