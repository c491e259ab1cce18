// The server's tool set, in registration order (tools/list pages through it in that order).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mcp/tool.h"

namespace mcpx::mcp {

class ToolRegistry {
 public:
  void Add(std::unique_ptr<Tool> tool);
  // nullptr when unknown.
  Tool* Find(std::string_view name) const;
  const std::vector<std::unique_ptr<Tool>>& tools() const { return tools_; }
  // Names in registration order, read once at Add(): Definition() builds the whole definition
  // each time, which a lookup per tools/call should not pay for.
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::unique_ptr<Tool>> tools_;
  std::vector<std::string> names_;  // names_[i] is tools_[i]'s
};

}  // namespace mcpx::mcp
