#include "cli/commands.h"

#include <spdlog/spdlog.h>

namespace mcpx::cli {

int RunServe(const Options& opts) {
  spdlog::error("'serve' is not implemented yet");
  return 2;
}

}  // namespace mcpx::cli
