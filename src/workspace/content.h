// What a file's bytes are: an image (by magic bytes, never by name), text (valid UTF-8 without NUL
// bytes), or other binary; and the MIME type to announce for it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mcpx::workspace {

enum class ContentKind { kText, kImage, kBinary };

// image/png, image/jpeg, image/gif or image/webp when `head` (the file's first bytes, at least 12
// for WebP) carries that format's signature.
std::optional<std::string> SniffImageMime(std::string_view head);

// Text means valid UTF-8 with no NUL byte; `bytes` may end inside a character (a cut range).
bool LooksLikeText(std::string_view bytes);

// A MIME type from the file name for resources and blobs: text/csv, application/json, ... with
// text/plain or application/octet-stream as the fallback depending on `is_text`.
std::string MimeFromName(std::string_view name, bool is_text);
// Only the extension table: nullopt when the name says nothing.
std::optional<std::string> MimeFromExtension(std::string_view name);

}  // namespace mcpx::workspace
