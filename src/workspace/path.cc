#include "workspace/path.h"

#include <climits>
#include <vector>

namespace mcpx::workspace {
namespace {

// A printable rendering of user input for error messages (newlines and control bytes escaped).
std::string Quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out + "'";
}

// "p" stripped of `prefix` when p is exactly prefix or continues with '/'.
bool StripPrefix(std::string_view& p, std::string_view prefix) {
  if (prefix.empty() || p.substr(0, prefix.size()) != prefix) return false;
  if (p.size() != prefix.size() && p[prefix.size()] != '/') return false;
  p.remove_prefix(prefix.size());
  return true;
}

}  // namespace

Result<std::string> CleanPath(std::string_view user_path, std::string_view host_root) {
  if (user_path.empty()) return InvalidArgument("path is empty (use \".\" for the workspace root)");
  if (user_path.find('\0') != std::string_view::npos) {
    return InvalidArgument("path " + Quote(user_path) + " contains a NUL byte");
  }
  std::string_view p = user_path;
  if (p.front() == '/') {
    while (host_root.size() > 1 && host_root.back() == '/') host_root.remove_suffix(1);
    if (!StripPrefix(p, kSandboxRoot) && !StripPrefix(p, host_root)) {
      return InvalidArgument("path " + Quote(user_path) +
                             " is outside the workspace: use a path relative to the workspace, "
                             "or one under /workspace/");
    }
  }

  std::vector<std::string_view> parts;
  while (!p.empty()) {
    const size_t slash = p.find('/');
    const std::string_view part = p.substr(0, slash);
    p.remove_prefix(slash == std::string_view::npos ? p.size() : slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return InvalidArgument("path " + Quote(user_path) +
                               " escapes the workspace (`..` above "
                               "the workspace root)");
      }
      parts.pop_back();
      continue;
    }
    if (part.size() > NAME_MAX) {
      return InvalidArgument("path " + Quote(user_path) + " has a component longer than " +
                             std::to_string(NAME_MAX) + " bytes");
    }
    parts.push_back(part);
  }

  if (parts.empty()) return std::string(".");
  std::string out;
  for (auto part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

}  // namespace mcpx::workspace
