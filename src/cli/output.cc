#include "cli/output.h"

#include <unistd.h>

#include <cerrno>

namespace mcpx::cli {

void WriteStdout(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace mcpx::cli
