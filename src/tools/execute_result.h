// execute_python's contract with the client: its outputSchema, and the CallToolResult made from
// a session's typed outcome (a readable text block first, then the images, and the same facts
// as structuredContent).
#pragma once

#include <nlohmann/json.hpp>

#include "session/execution.h"

namespace mcpx::tools {

// Every structuredContent ExecuteResult produces matches it.
nlohmann::json ExecuteOutputSchema();

nlohmann::json ExecuteResult(const session::ExecOutcome& outcome);

}  // namespace mcpx::tools
