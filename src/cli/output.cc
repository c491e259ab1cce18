#include "cli/output.h"
#include "util/io.h"

#include <unistd.h>

#include <cerrno>

namespace mcpx::cli {

void WriteStdout(std::string_view text) { (void)WriteAll(STDOUT_FILENO, text); }

}  // namespace mcpx::cli
