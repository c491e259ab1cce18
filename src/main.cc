// mcp-executor: a sandboxed, stateful Python execution server for MCP.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "util/logging.h"

int main(int argc, char** argv) {
  using namespace mcpx::cli;
  auto opts = ParseOptions(argc, argv);
  if (!opts.ok()) {
    std::fprintf(stderr, "mcp-executor: %s\n\n%s", opts.status().message().c_str(),
                 Usage().c_str());
    return 2;
  }
  if (opts->command == "help") {
    std::fputs(Usage().c_str(), stderr);
    return 0;
  }
  if (opts->command == "version") {
    std::fputs("mcp-executor " MCPX_VERSION "\n", stderr);
    return 0;
  }
  if (auto st = mcpx::InitLogging(opts->log_level); !st.ok()) {
    std::fprintf(stderr, "mcp-executor: %s\n", st.message().c_str());
    return 2;
  }
  const std::string& c = opts->command;
  if (c == "exec") return RunExec(*opts);
  if (c == "probe") return RunProbe(*opts);
  if (c == "doctor") return RunDoctor(*opts);
  if (c == "policy") return RunPolicy(*opts);
  return RunServe(*opts);
}
