// execute_python, list_sessions and reset_session over a SessionManager.
#pragma once

#include <memory>

#include "session/manager.h"
#include "tools/registry.h"

namespace mcpx::tools {

void AddSessionTools(Registry& registry, std::shared_ptr<session::SessionManager> manager);

}  // namespace mcpx::tools
