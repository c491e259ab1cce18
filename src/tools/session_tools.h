// execute_python, list_sessions and reset_session over a SessionManager.
#pragma once

#include <memory>

#include "mcp/tool_registry.h"
#include "session/manager.h"

namespace mcpx::tools {

void AddSessionTools(mcp::ToolRegistry& registry, std::shared_ptr<session::SessionManager> manager);

}  // namespace mcpx::tools
