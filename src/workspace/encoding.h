// Byte encodings the file tools and resources need: base64 (strict decoding with the position of
// the first bad character), UTF-8 validation, percent-encoding for file:// URIs, ISO 8601 times.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "util/status.h"

namespace mcpx::workspace {

std::string Base64Encode(std::string_view bytes);

// Standard alphabet; ASCII whitespace is skipped (wrapped base64), padding is optional. Errors
// name the position and character: "invalid base64 character '-' at position 12 (URL-safe
// base64? use the standard alphabet with '+' and '/')".
Result<std::string> Base64Decode(std::string_view text);

// Length of the longest prefix of `bytes` that is valid UTF-8 (no overlongs, no surrogates).
size_t Utf8ValidPrefix(std::string_view bytes);
bool IsUtf8(std::string_view bytes);
// Number of trailing bytes that form the start of a valid but unfinished sequence (0..3): a
// reader of a byte range drops them so that it never splits a character.
size_t Utf8IncompleteTail(std::string_view bytes);

// Percent-encodes a relative path for a URI path: unreserved characters and '/' stay as they are.
std::string PercentEncodePath(std::string_view rel);
// Decodes %XX escapes; a malformed escape or an encoded NUL is kInvalidArgument.
Result<std::string> PercentDecode(std::string_view s);

// "2024-05-01T12:34:56Z" (UTC, seconds).
std::string IsoTimeUtc(int64_t seconds_since_epoch);

}  // namespace mcpx::workspace
