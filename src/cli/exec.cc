#include "cli/commands.h"

#include <spdlog/spdlog.h>

namespace mcpx::cli {

int RunExec(const Options& opts) {
  spdlog::error("'exec' is not implemented yet");
  return 2;
}

}  // namespace mcpx::cli
