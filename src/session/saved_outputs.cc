#include "session/saved_outputs.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace mcpx::session {
namespace {

// Files, not only bytes: every saved file is an inode of the workspace's budget.
constexpr size_t kMaxFiles = 1000;

}  // namespace

void SavedOutputFiles::Adopt() {
  auto listing = ws_->List(dir_);
  if (!listing.ok()) return;  // no folder yet
  std::vector<workspace::Entry> found;
  for (auto& e : listing->entries) {
    if (e.type == workspace::FileType::kFile) found.push_back(std::move(e));
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.mtime < b.mtime; });
  for (auto& e : found) {
    total_ += e.size;
    files_.push_back({"", std::move(e.path), e.size});
  }
  if (!files_.empty()) (void)Add("", {});
}

std::vector<std::string> SavedOutputFiles::Add(const std::string& session,
                                               const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    // Rewritten under the same name (a session's cell numbers start over after a reset): the
    // old entry is the same file.
    for (auto it = files_.begin(); it != files_.end(); ++it) {
      if (it->path == p) {
        total_ -= std::min(total_, it->bytes);
        files_.erase(it);
        break;
      }
    }
  }
  const size_t first_new = files_.size();
  for (const std::string& p : paths) {
    auto read = ws_->Read(p, 0, 0);
    const uint64_t bytes = read.ok() ? read->size : 0;
    total_ += bytes;
    files_.push_back({session, p, bytes});
  }
  uint64_t session_bytes = 0;
  for (const File& f : files_) {
    if (f.session == session && !session.empty()) session_bytes += f.bytes;
  }
  std::vector<std::string> removed;
  size_t keep_from = first_new;  // files_[keep_from..] are this call's
  for (size_t i = 0; i < keep_from;) {
    const File& f = files_[i];
    const bool over_total = total_ > total_cap_ || files_.size() > kMaxFiles;
    const bool over_session =
        !session.empty() && f.session == session && session_bytes > session_cap_;
    if (!over_total && !over_session) {
      ++i;
      continue;
    }
    if (Remove(f)) removed.push_back(f.path);
    total_ -= std::min(total_, f.bytes);
    if (f.session == session) session_bytes -= std::min(session_bytes, f.bytes);
    files_.erase(files_.begin() + static_cast<std::ptrdiff_t>(i));
    --keep_from;
  }
  return removed;
}

void SavedOutputFiles::Forget(const std::string& session) {
  for (auto it = files_.begin(); it != files_.end();) {
    if (it->session != session) {
      ++it;
      continue;
    }
    Remove(*it);
    total_ -= std::min(total_, it->bytes);
    it = files_.erase(it);
  }
}

bool SavedOutputFiles::Remove(const File& f) {
  const Status st = ws_->Remove(f.path);
  if (!st.ok() && st.code() != Code::kNotFound) {
    spdlog::warn("cannot remove the saved output {}: {}", f.path, st.ToString());
    return false;
  }
  return true;
}

}  // namespace mcpx::session
