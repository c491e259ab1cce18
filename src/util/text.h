// Small text helpers every layer uses.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace mcpx {

// "a, b, c" for Join(items, ", ").
inline std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out.append(sep);
    out.append(s);
  }
  return out;
}

// ASCII letters lower-cased, every other byte as it is (host names, schemes, project names).
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// s followed by spaces up to `width` bytes (table columns; s as it is when it is wider).
inline std::string PadRight(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

// Spaces up to `width` bytes, then s (right-aligned numbers).
inline std::string PadLeft(const std::string& s, size_t width) {
  return s.size() < width ? std::string(width - s.size(), ' ') + s : s;
}

}  // namespace mcpx
