// Builds the server's tool set.
#pragma once

#include <memory>
#include <vector>

#include "tools/tool.h"

namespace mcpx::tools {

class Registry {
 public:
  void Add(std::unique_ptr<Tool> tool);
  // nullptr when unknown.
  Tool* Find(std::string_view name) const;
  const std::vector<std::unique_ptr<Tool>>& tools() const { return tools_; }

 private:
  std::vector<std::unique_ptr<Tool>> tools_;
};

}  // namespace mcpx::tools
