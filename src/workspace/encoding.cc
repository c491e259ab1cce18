#include "workspace/encoding.h"

#include <array>
#include <cstdio>

#include "util/text.h"

namespace mcpx::workspace {
namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeB64Table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kB64Table = MakeB64Table();

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string Printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", u);
  return buf;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the UTF-8 sequence starting at s[i] if it is valid and complete; 0 if invalid;
// SIZE_MAX if it is a valid start cut off by the end of s.
size_t SequenceAt(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // UTF-16 surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= s.size()) return SIZE_MAX;
    const auto b = static_cast<unsigned char>(s[i + k]);
    const unsigned char min = k == 1 ? lo : 0x80;
    const unsigned char max = k == 1 ? hi : 0xbf;
    if (b < min || b > max) return 0;
  }
  return len;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += kB64[v >> 18 & 63];
    out += kB64[v >> 12 & 63];
    out += kB64[v >> 6 & 63];
    out += kB64[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    const uint32_t v = at(i) << 16 | (rest == 2 ? at(i + 1) << 8 : 0);
    out += kB64[v >> 18 & 63];
    out += kB64[v >> 12 & 63];
    out += rest == 2 ? kB64[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t symbols = 0;  // data characters seen, padding excluded
  size_t pad_at = std::string_view::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (IsSpace(c)) continue;
    if (c == '=') {
      if (pad_at == std::string_view::npos) pad_at = i;
      continue;
    }
    if (pad_at != std::string_view::npos) {
      return InvalidArgument("invalid base64: data character " + Printable(c) + " at position " +
                             std::to_string(i) + " after padding '=' at position " +
                             std::to_string(pad_at));
    }
    const int8_t v = kB64Table[static_cast<unsigned char>(c)];
    if (v < 0) {
      std::string msg =
          "invalid base64 character " + Printable(c) + " at position " + std::to_string(i);
      if (c == '-' || c == '_')
        msg += " (URL-safe base64? use the standard alphabet with '+' and '/')";
      return InvalidArgument(msg);
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++symbols;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (symbols % 4 == 1) {
    return InvalidArgument("invalid base64: truncated input (" + std::to_string(symbols) +
                           " data characters; a final group needs at least 2)");
  }
  return out;
}

size_t Utf8ValidPrefix(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t n = SequenceAt(bytes, i);
    if (n == 0 || n == SIZE_MAX) return i;
    i += n;
  }
  return i;
}

bool IsUtf8(std::string_view bytes) { return Utf8ValidPrefix(bytes) == bytes.size(); }

size_t Utf8IncompleteTail(std::string_view bytes) {
  const size_t valid = Utf8ValidPrefix(bytes);
  if (valid == bytes.size() || bytes.size() - valid > 3) return 0;
  return SequenceAt(bytes, valid) == SIZE_MAX ? bytes.size() - valid : 0;
}

std::string PercentEncodePath(std::string_view rel) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(rel.size());
  for (char c : rel) {
    const auto u = static_cast<unsigned char>(c);
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (keep) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return InvalidArgument("malformed percent-escape at position " + std::to_string(i));
    }
    const int v = hi * 16 + lo;
    if (v == 0) return InvalidArgument("percent-encoded NUL byte at position " + std::to_string(i));
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

std::string IsoTimeUtc(int64_t seconds_since_epoch) {
  return UtcTimestamp(seconds_since_epoch * 1000, /*millis=*/false);
}

}  // namespace mcpx::workspace
