#include "tools/registry.h"

#include <utility>

namespace mcpx::tools {

void Registry::Add(std::unique_ptr<Tool> tool) { tools_.push_back(std::move(tool)); }

Tool* Registry::Find(std::string_view name) const {
  for (const auto& t : tools_) {
    if (t->name() == name) return t.get();
  }
  return nullptr;
}

}  // namespace mcpx::tools
