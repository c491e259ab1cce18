// A tool's MCP annotations (behaviour hints a client may show or act on). destructiveHint and
// idempotentHint only mean something for a tool that writes, so a read-only tool leaves them out.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace mcpx::tools {

struct ToolHints {
  bool read_only = false;
  bool destructive = false;
  bool idempotent = false;
  bool open_world = false;  // reaches beyond the server's own state (the sandbox, an index)
};

inline nlohmann::json Annotations(std::string_view title, ToolHints h) {
  nlohmann::json a = {
      {"title", title}, {"readOnlyHint", h.read_only}, {"openWorldHint", h.open_world}};
  if (!h.read_only) {
    a["destructiveHint"] = h.destructive;
    a["idempotentHint"] = h.idempotent;
  }
  return a;
}

}  // namespace mcpx::tools
