// The workspace: one host directory that the tools, the resources and every sandboxed kernel
// share. It is hostile ground: sandboxed code writes into it, so it may plant symlinks, FIFOs,
// sockets or deep trees anywhere. Every access here goes through the root's O_PATH fd:
//
// - Paths are cleaned lexically first (path.h): `..` never reaches the kernel.
// - Reads and listings resolve with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS). A symlink
//   that stays inside the workspace is followed; one that leaves it (relative or absolute) fails
//   with EXDEV and is reported as "escapes the workspace". On kernels without openat2 the walk
//   resolver opens one component at a time with O_NOFOLLOW and refuses every symlink.
// - Writes never follow a symlink in any component, whatever the resolver: parents are opened
//   (and created) one by one with O_NOFOLLOW, and a symlink as the target name is refused.
// - Only regular files are read: the target is opened O_PATH and checked before any real open,
//   so a FIFO never blocks and a device's open() never runs.
// - A write replaces the directory entry (temp file + fsync + renameat); it never modifies an
//   existing inode, so a hard link to a file outside the workspace is not written through (the
//   outside file keeps its content and the workspace name gets a new inode). Reading a hard link
//   is allowed: the sandbox cannot create one to a file it cannot see (links across mounts fail
//   with EXDEV), and whoever made it on the host could read the file anyway.
// - An append is the exception: it writes in place (O_APPEND on the file opened O_NOFOLLOW in
//   its symlink-free parent), so its cost is that of the new bytes, never of what the sandbox put
//   in the file (a copy of a planted 512 MiB sparse file took seconds of the event loop). It
//   refuses a file with more than one hard link, and a failed write is cut back (ftruncate) to
//   the old length: the file ends with all of the new bytes or none of them.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::workspace {

enum class Resolver {
  kAuto,     // openat2 when the kernel has it, else the walk
  kOpenat2,  // fail Open() if the kernel lacks openat2
  kWalk,     // the fallback, selectable for tests
};

struct OpenOptions {
  Resolver resolver = Resolver::kAuto;
};

enum class FileType { kFile, kDirectory, kSymlink, kFifo, kSocket, kDevice, kOther };
// "file", "directory", "symlink", "fifo", "socket", "device", "other".
std::string_view FileTypeName(FileType type);
FileType FileTypeFromMode(mode_t mode);
// "a FIFO", "a socket", "a directory", ... for "'x' is a FIFO, not a regular file".
std::string_view FileTypeArticle(FileType type);

struct Entry {
  std::string path;  // relative to the workspace root
  FileType type = FileType::kOther;
  uint64_t size = 0;
  int64_t mtime = 0;   // seconds since the epoch
  std::string target;  // symlinks only: the link text, never followed
};

struct ListOptions {
  bool recursive = false;
  size_t max_entries = 10000;
  // Deeper folders are not entered (and the listing says so); bounds fds and stack.
  size_t max_depth = 64;
};

struct Listing {
  std::string path;            // the listed folder, clean and relative ("." for the root)
  std::vector<Entry> entries;  // sorted by path (bytewise)
  bool truncated = false;      // max_entries reached
  size_t skipped_deep = 0;     // folders below max_depth not entered
};

struct FileRead {
  std::string path;  // clean relative path
  uint64_t size = 0;
  uint64_t offset = 0;
  std::string data;  // bytes [offset, offset + data.size())
  std::string head;  // the file's first bytes (up to 16), for format sniffing
};

struct WriteOptions {
  // Add data at the end of an existing file, in place (see the header comment): all of it or
  // none (a failed write is cut back), but not atomic for readers and not fsynced.
  bool append = false;
  bool create_parents = true;
};

struct WriteResult {
  std::string path;  // clean relative path
  uint64_t bytes_written = 0;
  uint64_t size = 0;  // size of the file after the write
  bool created = false;
};

class Workspace {
 public:
  // Creates `dir` (one level) if missing and keeps an O_PATH fd of it; root() is its absolute,
  // symlink-free path.
  static Result<std::shared_ptr<Workspace>> Open(const std::string& dir, OpenOptions options = {});

  const std::string& root() const { return root_; }
  int root_fd() const { return root_fd_.get(); }
  // kOpenat2 or kWalk: what Open() settled on.
  Resolver resolver() const { return resolver_; }

  // A user path ("x", "./x", "/workspace/x", root()/x) as a clean relative path ("." for the
  // root). Only lexical: says nothing about symlinks, which the methods below handle.
  Result<std::string> Confine(std::string_view user_path) const;

  // Reads at most `limit` bytes from `offset` of a regular file. Directories, FIFOs, sockets,
  // devices and escaping symlinks are errors naming the path.
  Result<FileRead> Read(std::string_view user_path, uint64_t offset, uint64_t limit) const;

  // Atomically replaces a regular file (temp + rename), or appends to it in place; parents are
  // created. Other engineers use this for `.mcp-executor/outputs/...`.
  Result<WriteResult> WriteFileAtomic(std::string_view user_path, std::string_view data,
                                      WriteOptions options = {}) const;

  // Deletes a regular file (or a symlink, never what it points to), found without following a
  // symlink in any component. Folders are refused. A missing file is NotFound.
  Status Remove(std::string_view user_path) const;

  // Entries of a folder (recursively if asked). Symlinks are listed, never followed; the folder
  // itself may be reached through an inside symlink under the openat2 resolver.
  Result<Listing> List(std::string_view user_path, ListOptions options = {}) const;

 private:
  Workspace(std::string root, UniqueFd root_fd, Resolver resolver)
      : root_(std::move(root)), root_fd_(std::move(root_fd)), resolver_(resolver) {}

  // Opens a clean relative path with `flags` (O_CLOEXEC added) using the active resolver.
  Result<UniqueFd> Resolve(const std::string& rel, int flags) const;
  Result<UniqueFd> ResolveWalk(const std::string& rel, int flags) const;
  // Parent folder of a write, opened component by component without following symlinks.
  Result<UniqueFd> OpenParentForWrite(const std::string& rel_dir, bool create) const;

  std::string root_;
  UniqueFd root_fd_;
  Resolver resolver_;
};

}  // namespace mcpx::workspace
