// Cutting UTF-8 text without splitting a character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mcpx {

// Longest prefix of s that does not end inside a UTF-8 sequence.
size_t Utf8SafePrefix(std::string_view s, size_t n);
// Offset of the first byte in s[from..] that starts a UTF-8 sequence.
size_t Utf8SafeStart(std::string_view s, size_t from);
// s itself when it fits in `max` bytes, else its UTF-8-safe head and "... [N bytes omitted]".
std::string CapUtf8(std::string s, size_t max);

}  // namespace mcpx
