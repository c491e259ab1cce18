#include "jail/rootfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace mcpx::jail {
namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(Code::kNotFound, "cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsCleanAbsolute(const std::string& p) {
  if (p.empty() || p[0] != '/' || p == "/") return false;
  std::istringstream parts(p.substr(1));
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

}  // namespace

Result<std::vector<RootfsEntry>> ParseRootfsManifest(const std::string& text,
                                                     const std::string& rootfs_dir) {
  std::vector<RootfsEntry> entries;
  std::istringstream lines(text);
  std::string line;
  int lineno = 0;
  while (std::getline(lines, line)) {
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string kind, target, source, extra;
    if (!(words >> kind)) continue;
    words >> target >> source >> extra;
    const std::string where = "rootfs manifest line " + std::to_string(lineno) + ": ";
    if (!extra.empty()) return InvalidArgument(where + "too many fields");
    if (!IsCleanAbsolute(target)) {
      return InvalidArgument(where + "target '" + target +
                             "' must be an absolute path without '.', '..' or '//'");
    }
    RootfsEntry e;
    e.target = target;
    struct stat st {};
    if (kind == "ro" || kind == "ro?") {
      e.kind = RootfsEntry::Kind::kBind;
      e.source = source.empty() ? target : source;
      if (lstat(e.source.c_str(), &st) != 0) {
        if (kind == "ro?" && errno == ENOENT) continue;
        return ErrnoStatus(Code::kNotFound, where + "host path " + e.source);
      }
    } else if (kind == "mirror") {
      if (!source.empty()) return InvalidArgument(where + "mirror takes no source");
      if (lstat(target.c_str(), &st) != 0) continue;  // absent on this host: nothing to mirror
      if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        const ssize_t n = readlink(target.c_str(), buf, sizeof(buf) - 1);
        if (n < 0) return ErrnoStatus(Code::kInternal, where + "readlink " + target);
        e.kind = RootfsEntry::Kind::kSymlink;
        e.source.assign(buf, static_cast<size_t>(n));
      } else {
        e.kind = RootfsEntry::Kind::kBind;
        e.source = target;
      }
    } else if (kind == "file") {
      if (source.empty() || source[0] == '/' || source.find("..") != std::string::npos) {
        return InvalidArgument(where + "file needs a source relative to " + rootfs_dir);
      }
      e.kind = RootfsEntry::Kind::kFile;
      ASSIGN_OR_RETURN(e.content, ReadWholeFile(rootfs_dir + "/" + source));
    } else if (kind == "dir") {
      if (!source.empty()) return InvalidArgument(where + "dir takes no source");
      e.kind = RootfsEntry::Kind::kDir;
    } else {
      return InvalidArgument(where + "unknown kind '" + kind +
                             "' (expected ro, ro?, mirror, file or dir)");
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

Result<std::vector<RootfsEntry>> LoadRootfsManifest(const std::string& rootfs_dir) {
  const std::string path = rootfs_dir + "/manifest";
  auto text = ReadWholeFile(path);
  if (!text.ok()) {
    return text.status().Annotate(
        "rootfs manifest missing (is the data dir right? set "
        "MCPX_DATA_DIR)");
  }
  return ParseRootfsManifest(*text, rootfs_dir);
}

}  // namespace mcpx::jail
