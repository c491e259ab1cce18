// Lexical half of workspace confinement: turns what a user or a model typed into a clean relative
// path. The kernel half (openat2 / the component walk in workspace.cc) then resolves that path
// beneath the root fd, which is what stops symlinks.
//
// `..` is folded lexically here, so it never reaches the kernel: "a/../b" is "b" even when "a" is a
// symlink. A path whose `..` climbs above the root is refused, never clamped.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace mcpx::workspace {

// The workspace as code inside the sandbox sees it (and every kernel's working directory).
inline constexpr std::string_view kSandboxRoot = "/workspace";

// "." | "a/b" | "/workspace/a/b" | "./a//b/" | <host_root>/a  ->  "." (the root) or "a/b".
// host_root (the workspace's absolute host path) is accepted as a prefix too, since clients see
// it in logs. Errors (kInvalidArgument, message names the path): empty, NUL bytes, other absolute
// paths, escaping `..`, a component longer than NAME_MAX.
Result<std::string> CleanPath(std::string_view user_path, std::string_view host_root = {});

// Joins a clean relative directory and a child name ("." + "x" = "x").
inline std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty() || dir == ".") return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
}

}  // namespace mcpx::workspace
