// Sizes as people read them in messages.
#pragma once

#include <cstdint>
#include <string>

namespace mcpx {

// Whole mebibytes, rounded down: "64 MiB".
inline std::string MiB(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace mcpx
