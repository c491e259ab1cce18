// execute_python's contract with the client: its outputSchema, and the CallToolResult made from
// a session's typed outcome: a readable text block first, then the images, and the same facts
// as structuredContent. Output appears once within the policy's budget, in the half of the
// result the client most likely shows the model, and once as a short view (docs/REPLIES.md).
#pragma once

#include <nlohmann/json.hpp>

#include "session/execution.h"

namespace mcpx::tools {

// Every structuredContent ExecuteResult produces matches it.
nlohmann::json ExecuteOutputSchema();

nlohmann::json ExecuteResult(const session::ExecOutcome& outcome);

}  // namespace mcpx::tools
