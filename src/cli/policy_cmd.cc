#include "cli/commands.h"

#include <spdlog/spdlog.h>

namespace mcpx::cli {

int RunPolicy(const Options& opts) {
  spdlog::error("'policy' is not implemented yet");
  return 2;
}

}  // namespace mcpx::cli
