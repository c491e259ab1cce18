#include "cli/commands.h"

#include <spdlog/spdlog.h>

namespace mcpx::cli {

int RunDoctor(const Options& opts) {
  spdlog::error("'doctor' is not implemented yet");
  return 2;
}

}  // namespace mcpx::cli
