#include "workspace/errors.h"

#include <cerrno>

namespace mcpx::workspace {

std::string Q(std::string_view rel) { return "'" + std::string(rel) + "'"; }

// The resolver's errno as a message about the user's path.
Status ResolveError(const std::string& rel, int err) {
  switch (err) {
    case EXDEV:
      return {Code::kPermissionDenied,
              "path " + Q(rel) +
                  " escapes the workspace (a symlink on the way points outside it; absolute "
                  "symlinks count as outside)",
              err};
    case ELOOP:
      return {Code::kPermissionDenied,
              "path " + Q(rel) + ": symlink loop, too many symlinks, or a /proc magic link", err};
    case ENOENT:
      return {Code::kNotFound, Q(rel) + " does not exist (or is a dangling symlink)", err};
    case ENOTDIR:
      return {Code::kInvalidArgument, "a parent folder of " + Q(rel) + " is not a directory", err};
    case ENAMETOOLONG:
      return {Code::kInvalidArgument, "path " + Q(rel) + " is too long", err};
    case EACCES:
    case EPERM:
      return ErrnoStatus(Code::kPermissionDenied, "cannot open " + Q(rel), err);
    default:
      return ErrnoStatus(Code::kInternal, "cannot open " + Q(rel), err);
  }
}

Status NotRegular(const std::string& rel, FileType type) {
  if (type == FileType::kDirectory) {
    return InvalidArgument(Q(rel) + " is a directory, not a regular file (use list_files)");
  }
  return InvalidArgument(Q(rel) + " is " + std::string(FileTypeArticle(type)) +
                         ", not a regular file");
}

Status SymlinkRefused(const std::string& rel) {
  return PermissionDenied(Q(rel) + " is a symlink; write_file never writes through symlinks");
}

}  // namespace mcpx::workspace
