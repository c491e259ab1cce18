// Logging goes to stderr only: fd 1 carries MCP messages and nothing else.
#pragma once

#include <string_view>

#include "util/status.h"

namespace mcpx {

// Installs a stderr-only spdlog default logger. level: trace|debug|info|warn|error|off.
Status InitLogging(std::string_view level);

}  // namespace mcpx
