// install_package, through the session manager (which hands it to the package installer and
// tells the kernels about it afterwards).
#pragma once

#include <memory>

#include <string>
#include "mcp/tool_registry.h"

#include "session/manager.h"

namespace mcpx::tools {

// `sources`: where packages come from, for the description (packages::DescribeSources).
void AddPackageTools(mcp::ToolRegistry& registry, std::shared_ptr<session::SessionManager> manager,
                     std::string sources);

}  // namespace mcpx::tools
