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

// `output_bytes`: the policy's output_kb, the page size the markers suggest for read_file.
nlohmann::json ExecuteResult(const session::ExecOutcome& outcome, uint64_t output_bytes);

}  // namespace mcpx::tools
