#include "tools/registry.h"

#include <utility>

namespace mcpx::tools {

void Registry::Add(std::unique_ptr<Tool> tool) { tools_.push_back(std::move(tool)); }

const std::vector<std::string>& Registry::names() const {
  while (names_.size() < tools_.size()) names_.push_back(tools_[names_.size()]->name());
  return names_;
}

Tool* Registry::Find(std::string_view name) const {
  const auto& all = names();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == name) return tools_[i].get();
  }
  return nullptr;
}

}  // namespace mcpx::tools
