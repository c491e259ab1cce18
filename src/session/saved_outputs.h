// The files sessions leave in the workspace's `.mcp-executor/outputs/`: long output saved whole,
// images past a reply's max_images. Without a bound, one print of a million lines a call fills
// the disk; so they are capped per session and in total, and the oldest go first. A session's
// files go with reset_session.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "workspace/workspace.h"

namespace mcpx::session {

class SavedOutputFiles {
 public:
  SavedOutputFiles(std::shared_ptr<const workspace::Workspace> ws, std::string dir,
                   uint64_t session_cap, uint64_t total_cap)
      : ws_(std::move(ws)),
        dir_(std::move(dir)),
        session_cap_(session_cap),
        total_cap_(total_cap) {}

  // Counts what an earlier server left in the folder, oldest first, owned by no session.
  void Adopt();
  // Records files just written for `session` (workspace-relative paths; sizes are read from the
  // workspace) and removes the oldest others until both caps hold again. Returns the paths
  // removed. The files of this call are never removed, even when they alone pass a cap.
  std::vector<std::string> Add(const std::string& session, const std::vector<std::string>& paths);
  // Removes every file of `session`.
  void Forget(const std::string& session);

  uint64_t total_bytes() const { return total_; }
  size_t files() const { return files_.size(); }

 private:
  struct File {
    std::string session;
    std::string path;
    uint64_t bytes = 0;
  };
  bool Remove(const File& f);

  std::shared_ptr<const workspace::Workspace> ws_;
  std::string dir_;
  uint64_t session_cap_;
  uint64_t total_cap_;
  std::deque<File> files_;  // oldest first
  uint64_t total_ = 0;
};

}  // namespace mcpx::session
