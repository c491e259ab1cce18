#include "workspace/content.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "workspace/encoding.h"

namespace mcpx::workspace {

std::optional<std::string> SniffImageMime(std::string_view head) {
  using namespace std::string_view_literals;
  if (head.starts_with("\x89PNG\r\n\x1a\n"sv)) return "image/png";
  if (head.starts_with("\xff\xd8\xff"sv)) return "image/jpeg";
  if (head.starts_with("GIF87a"sv) || head.starts_with("GIF89a"sv)) return "image/gif";
  if (head.size() >= 12 && head.starts_with("RIFF"sv) && head.substr(8, 4) == "WEBP"sv) {
    return "image/webp";
  }
  return std::nullopt;
}

bool LooksLikeText(std::string_view bytes) {
  if (bytes.find('\0') != std::string_view::npos) return false;
  return Utf8ValidPrefix(bytes) + Utf8IncompleteTail(bytes) == bytes.size();
}

std::optional<std::string> MimeFromExtension(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"txt", "text/plain"},
      {"log", "text/plain"},
      {"md", "text/markdown"},
      {"csv", "text/csv"},
      {"tsv", "text/tab-separated-values"},
      {"json", "application/json"},
      {"jsonl", "application/jsonl"},
      {"html", "text/html"},
      {"htm", "text/html"},
      {"xml", "application/xml"},
      {"yaml", "application/yaml"},
      {"yml", "application/yaml"},
      {"py", "text/x-python"},
      {"ipynb", "application/x-ipynb+json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"gz", "application/gzip"},
      {"tar", "application/x-tar"},
      {"parquet", "application/vnd.apache.parquet"},
      {"npy", "application/octet-stream"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
  };
  const size_t slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const size_t dot = base.rfind('.');
  if (dot != std::string_view::npos && dot > 0) {
    std::string ext(base.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const auto& [e, mime] : kTypes) {
      if (e == ext) return std::string(mime);
    }
  }
  return std::nullopt;
}

std::string MimeFromName(std::string_view name, bool is_text) {
  if (auto mime = MimeFromExtension(name)) return *mime;
  return is_text ? "text/plain" : "application/octet-stream";
}

}  // namespace mcpx::workspace
