// Workspace files as MCP resources: `resources/list` pages through every regular file (recursive,
// sorted, 100 per page), `resources/read` returns one. URIs are file:///workspace/<relpath>,
// percent-encoded: the path code sees inside the sandbox, so one name works everywhere.
#pragma once

#include <memory>

#include "mcp/resources.h"
#include "workspace/workspace.h"

namespace mcpx::tools {

inline constexpr std::string_view kResourceUriPrefix = "file:///workspace/";
inline constexpr size_t kResourcesPageSize = 100;
// Files larger than this are not returned by resources/read (read_file pages through them).
inline constexpr uint64_t kResourceReadCap = 8ull << 20;

std::unique_ptr<mcp::ResourceProvider> MakeWorkspaceResources(
    std::shared_ptr<workspace::Workspace> ws);

// "file:///workspace/a%20b" -> "a b" (clean relative path); kInvalidArgument when malformed or
// outside the workspace.
Result<std::string> PathFromResourceUri(const workspace::Workspace& ws, std::string_view uri);
std::string ResourceUri(std::string_view rel);

}  // namespace mcpx::tools
