#include "cli/commands.h"

#include <spdlog/spdlog.h>

namespace mcpx::cli {

int RunProbe(const Options& opts) {
  spdlog::error("'probe' is not implemented yet");
  return 2;
}

}  // namespace mcpx::cli
