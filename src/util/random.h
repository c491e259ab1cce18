// Unguessable identifiers from the kernel's CSPRNG.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace mcpx {

// 2 * `bytes` lowercase hex digits from getrandom(2); nullopt if the kernel gave fewer bytes.
std::optional<std::string> RandomHex(size_t bytes);

}  // namespace mcpx
