// Small text helpers every layer uses.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
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

// Appends `data` to `tail`, keeping only its last `max` bytes (a stream's end, for an error).
inline void AppendTail(std::string& tail, std::string_view data, size_t max) {
  if (data.size() >= max) {
    tail.assign(data.substr(data.size() - max));
    return;
  }
  tail.append(data);
  if (tail.size() > max) tail.erase(0, tail.size() - max);
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

// RFC 3339 in UTC: "2026-12-07T10:23:56Z", or with `millis` "2026-12-07T10:23:56.298Z".
inline std::string UtcTimestamp(int64_t ms_since_epoch, bool millis) {
  const auto secs = static_cast<time_t>(ms_since_epoch / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[40];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  if (millis) {
    snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms_since_epoch % 1000));
  } else {
    snprintf(buf + n, sizeof buf - n, "Z");
  }
  return buf;
}

}  // namespace mcpx
