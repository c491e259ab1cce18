#include "cli/commands.h"

#include <spdlog/spdlog.h>

namespace mcpx::cli {

// The escape-probe corpus is not built yet; until it is, say what exists instead.
int RunProbe(const Options&) {
  spdlog::error(
      "'probe' is not built yet; the escape probes run as tests (tests/security, `make test`) "
      "and `mcp-executor doctor` reports the layers");
  return 2;
}

}  // namespace mcpx::cli
