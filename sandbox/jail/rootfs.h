// The rootfs manifest (rootfs/manifest): what the sandbox root holds. Loaded in the parent; the
// entries become mount steps in mounts.cc.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace mcpx::jail {

struct RootfsEntry {
  enum class Kind {
    kBind,     // read-only bind of a host path
    kSymlink,  // a symlink (from a host symlink that `mirror` found)
    kFile,     // a file written into the root with `content`
    kDir,      // an empty directory
  };
  Kind kind = Kind::kDir;
  std::string target;   // absolute path inside the sandbox
  std::string source;   // host path (kBind) or link target (kSymlink)
  std::string content;  // kFile
};

// Parses `text` (the manifest's content). `rootfs_dir` resolves `file` sources; host paths are
// examined (lstat) to resolve `ro?` and `mirror`. Errors name the line.
Result<std::vector<RootfsEntry>> ParseRootfsManifest(const std::string& text,
                                                     const std::string& rootfs_dir);
// Reads <rootfs_dir>/manifest and parses it.
Result<std::vector<RootfsEntry>> LoadRootfsManifest(const std::string& rootfs_dir);

}  // namespace mcpx::jail
