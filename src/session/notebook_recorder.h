// Writes each session's record, `.mcp-executor/notebooks/<session>.ipynb` in the workspace
// (notebook.h builds it), so a person can review or rerun what the assistant ran. The policy's
// `record_notebook` turns it off.
//
// The notebook is kept in memory per session and each cell is one atomic rewrite of the file
// (temp + rename, so a reader never sees half a notebook, and whatever the sandbox wrote to that
// name between cells is replaced). It runs on the event loop and blocks on nothing but that
// write. A record is never worth failing a call: when the workspace's disk budget has no room, or
// the write fails, the cell stays in memory (the next write catches up) and a log line says so.
//
// Files: the first server to record session S writes `S.ipynb`. A later server (a restart)
// appends to the newest existing file of the series `S.ipynb`, `S-2.ipynb`, `S-3.ipynb`, ... when
// it parses as a notebook whose metadata names session S; a file that does not (corrupt, the
// user's own notebook, or session "S-2"'s record) is never touched: the record goes to the next
// free name of the series instead. A file that reaches the size cap is continued in the next
// free name too; before that, a cell whose images would not fit keeps a note per image instead.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "session/execution.h"
#include "workspace/disk_budget.h"
#include "workspace/workspace.h"

namespace mcpx::session {

inline constexpr const char* kNotebooksDir = ".mcp-executor/notebooks";
inline constexpr uint64_t kNotebookMaxBytes = 20ull << 20;

class NotebookRecorder {
 public:
  // `disk` may be null (no budget to respect).
  NotebookRecorder(std::shared_ptr<workspace::Workspace> ws, const workspace::DiskBudget* disk,
                   uint64_t max_bytes = kNotebookMaxBytes);

  // The code a session's kernel now runs; Record() pairs it with the outcome.
  void Started(const std::string& session, std::string code);
  // Appends the execution's cell and rewrites the file.
  void Record(const ExecOutcome& outcome);
  // The session's kernel is gone with its state: a markdown cell says why (when the session has
  // a record open). With `session_ended` (reset_session, idle sweep) the record also leaves memory;
  // a later cell of that name reopens the file.
  void StateLost(const std::string& session, const std::string& why, bool session_ended = false);

  // The workspace-relative path of the session's current file ("" when none is open).
  std::string PathOf(const std::string& session) const;

 private:
  struct Notebook {
    nlohmann::json nb;
    std::string path;  // "" when this session is not recorded (too many files of its name)
    std::string pending_code;
  };
  // The notebooks folder: every name in it, and the regular files' sizes.
  struct Folder {
    std::set<std::string> taken;
    std::map<std::string, uint64_t> sizes;
  };

  Notebook& Open(const std::string& session);
  Folder ListFolder(const std::string& session) const;
  // Index of the first name of the series not in `f` (past kMaxFiles: none, logged).
  static int FirstFree(const std::string& session, const Folder& f);
  // The file a session's record goes to when it is opened: the one it continues, or a new one.
  Notebook Pick(const std::string& session) const;
  // A new file for the record after `full`, starting with a note that says where it continues.
  Notebook NextFile(const std::string& session, const Notebook& full) const;
  // Appends `cell` (or `lean`, its image-less twin) where it fits; may move on to a new file.
  void Append(const std::string& session, Notebook& n, nlohmann::json cell, nlohmann::json lean);
  void Write(const Notebook& n, const std::string& text);

  std::shared_ptr<workspace::Workspace> ws_;
  const workspace::DiskBudget* disk_;
  uint64_t max_bytes_;
  std::map<std::string, Notebook> open_;
};

}  // namespace mcpx::session
