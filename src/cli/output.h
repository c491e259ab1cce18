// Terminal output for the one-shot commands (exec, doctor, policy). `serve` never calls
// this: in serve mode fd 1 belongs to the MCP transport alone.
#pragma once

#include <string_view>

namespace mcpx::cli {

// Writes all of text to fd 1, retrying on EINTR and short writes.
void WriteStdout(std::string_view text);

}  // namespace mcpx::cli
