// What the MCP server needs from whoever serves `resources/*` (the workspace).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace mcpx::mcp {

class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;
  // The `resources/list` result: {resources: [{uri, name, mimeType?, size?}], nextCursor?}.
  // A cursor the provider did not issue is kInvalidArgument.
  virtual Result<nlohmann::json> List(const std::optional<std::string>& cursor) = 0;
  // The `resources/read` result: {contents: [{uri, mimeType, text | blob}]}.
  // Unknown resource: kNotFound (JSON-RPC -32002); a URI outside the workspace: kInvalidArgument.
  virtual Result<nlohmann::json> Read(const std::string& uri) = 0;
};

}  // namespace mcpx::mcp
