#include "mcp/tool_registry.h"

#include <utility>

namespace mcpx::mcp {

void ToolRegistry::Add(std::unique_ptr<Tool> tool) {
  names_.push_back(tool->name());
  tools_.push_back(std::move(tool));
}

Tool* ToolRegistry::Find(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return tools_[i].get();
  }
  return nullptr;
}

}  // namespace mcpx::mcp
