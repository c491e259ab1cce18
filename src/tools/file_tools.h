// The workspace file tools: read_file, write_file, list_files. They answer at once (no kernel
// involved) and run on the event loop thread; every filesystem access goes through
// workspace::Workspace, which does the confinement.
#pragma once

#include <cstdint>
#include <memory>

#include "mcp/tool_registry.h"
#include "workspace/workspace.h"

namespace mcpx::tools {

// Caps, in bytes unless named otherwise (the lead documents them).
inline constexpr uint64_t kReadDefaultLimit = 256 * 1024;  // per read_file call, text or binary
inline constexpr uint64_t kReadMaxLimit = 1024 * 1024;     // a larger `limit` is lowered to this
inline constexpr uint64_t kImageCap = 4 * 1024 * 1024;     // whole images returned as image blocks
inline constexpr uint64_t kWriteCap = 16 * 1024 * 1024;    // decoded write_file content
inline constexpr size_t kListCap = 10000;                  // list_files entries

void AddFileTools(mcp::ToolRegistry& registry, std::shared_ptr<workspace::Workspace> ws);

}  // namespace mcpx::tools
