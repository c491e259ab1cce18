// Sizes and counts as people (and models) read them in messages.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace mcpx {

// Whole mebibytes, rounded down: "64 MiB".
inline std::string MiB(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// One decimal past 10 KiB only where it says something: "512 bytes", "3.2 KiB", "812 KiB",
// "6.6 MiB", "1.2 GiB".
inline std::string HumanSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  double v = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  snprintf(buf, sizeof buf, v < 10.0 ? "%.1f %s" : "%.0f %s", v, kUnits[unit]);
  return buf;
}

// Digits grouped by thousands: "999,000".
inline std::string Thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  for (size_t i = digits.size(); i > 3; i -= 3) digits.insert(i - 3, ",");
  return digits;
}

}  // namespace mcpx
