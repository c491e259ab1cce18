#include "util/utf8.h"

#include <algorithm>

namespace mcpx {
namespace {

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

size_t Utf8SafePrefix(std::string_view s, size_t n) {
  const size_t end = std::min(n, s.size());
  size_t j = end;
  int cont = 0;
  while (j > 0 && cont < 3 && IsContinuation(s[j - 1])) {
    --j;
    ++cont;
  }
  if (j == 0) return end;  // no lead byte in reach: not UTF-8 anyway, leave it
  const auto lead = static_cast<unsigned char>(s[j - 1]);
  const size_t len = lead < 0x80           ? 1
                     : (lead >> 5) == 0x6  ? 2
                     : (lead >> 4) == 0xE  ? 3
                     : (lead >> 3) == 0x1E ? 4
                                           : 1;
  const size_t start = j - 1;
  return start + len > end ? start : end;
}

size_t Utf8SafeStart(std::string_view s, size_t from) {
  size_t i = from;
  while (i < s.size() && i < from + 4 && IsContinuation(s[i])) ++i;
  return i;
}

std::string CapUtf8(std::string s, size_t max) {
  if (s.size() <= max) return s;
  const size_t omitted = s.size() - max;
  s.resize(Utf8SafePrefix(s, max));
  return s + "... [" + std::to_string(omitted) + " bytes omitted]";
}

}  // namespace mcpx
