// install_package over the package installer (packages/installer.h).
#pragma once

#include <memory>

#include "mcp/tool_registry.h"
#include "packages/installer.h"
#include "session/manager.h"

namespace mcpx::tools {

void AddPackageTools(mcp::ToolRegistry& registry, std::shared_ptr<packages::Installer> installer,
                     std::shared_ptr<session::SessionManager> manager);

}  // namespace mcpx::tools
