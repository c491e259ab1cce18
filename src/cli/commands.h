// One function per subcommand, each in its own file. Each returns the process exit code.
#pragma once

#include "cli/options.h"

namespace mcpx::cli {

int RunServe(const Options& opts);   // serve.cc
int RunExec(const Options& opts);    // exec.cc
int RunProbe(const Options& opts);   // probe.cc
int RunDoctor(const Options& opts);  // doctor.cc
int RunPolicy(const Options& opts);  // policy_cmd.cc

}  // namespace mcpx::cli
