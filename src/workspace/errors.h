// Errors about a user's workspace path, worded once for every file of the workspace module
// (reads, writes, listings): each names the path as the user gave it, relative to the workspace.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"
#include "workspace/workspace.h"

namespace mcpx::workspace {

// The path in quotes, as messages show it.
std::string Q(std::string_view rel);
// The resolver's errno (openat2 with RESOLVE_BENEATH, or the walk) as a message about `rel`.
Status ResolveError(const std::string& rel, int err);
// `rel` is not a regular file but a `type`.
Status NotRegular(const std::string& rel, FileType type);
// `rel` is a symlink, which write_file never writes through.
Status SymlinkRefused(const std::string& rel);

}  // namespace mcpx::workspace
