// Writes each session's record, `.mcp-executor/notebooks/<session>.ipynb` in the workspace
// (notebook.h builds it), so a person can review or rerun what the assistant ran. The policy's
// `record_notebook` turns it off.
//
// The notebook is kept in memory per session and the file is rewritten atomically (temp +
// rename, so a reader never sees half a notebook, and whatever the sandbox wrote to that name
// between cells is replaced). The rewrite runs kWriteDelayMs after a cell ends, so the reply goes
// out before it and cells that end within that time share one write; it blocks the loop for
// nothing but that write (serialising and fsyncing a notebook near the cap takes a few tens of ms).
// A record is never worth failing a call: when the workspace's disk budget has no room, or the
// write fails, the cells stay in memory (the next write catches up) and a log line says so.
//
// Files: the first server to record session S writes `S.ipynb`. A later server (a restart)
// appends to the newest existing file of the series `S.ipynb`, `S-2.ipynb`, `S-3.ipynb`, ... when
// it parses as a notebook whose metadata names session S; a file that does not (corrupt, the
// user's own notebook, or session "S-2"'s record) is never touched: the record goes to the next
// free name of the series instead. A cell that would take a file past the size cap starts the
// next free name; only a cell bigger than a whole file keeps a note per image instead.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "session/execution.h"
#include "util/event_loop.h"
#include "workspace/disk_budget.h"
#include "workspace/workspace.h"

namespace mcpx::session {

inline constexpr const char* kNotebooksDir = ".mcp-executor/notebooks";
inline constexpr int kWriteDelayMs = 200;
// Each rewrite serialises and fsyncs the whole file on the event loop: 4 MiB keeps that to a few
// tens of ms and still holds a cell with five 300 KiB images.
inline constexpr uint64_t kNotebookMaxBytes = 4ull << 20;

class NotebookRecorder {
 public:
  // `disk` may be null (no budget to respect); `loop` null: every change is written at once.
  NotebookRecorder(EventLoop* loop, std::shared_ptr<workspace::Workspace> ws,
                   const workspace::DiskBudget* disk, uint64_t max_bytes = kNotebookMaxBytes);
  ~NotebookRecorder();  // writes what is not written yet
  NotebookRecorder(const NotebookRecorder&) = delete;
  NotebookRecorder& operator=(const NotebookRecorder&) = delete;

  // The code a session's kernel now runs; Record() pairs it with the outcome.
  void Started(const std::string& session, std::string code);
  // Appends the execution's cell; the file is rewritten soon after.
  void Record(const ExecOutcome& outcome);
  // The session's kernel is gone with its state: a markdown cell says why (when the session has
  // a record open). With `session_ended` (reset_session, idle sweep) the record leaves memory
  // once written; a later cell of that name reopens the file.
  void StateLost(const std::string& session, const std::string& why, bool session_ended = false);
  // Writes every record with unwritten cells now (at shutdown; the posted write does it otherwise).
  void Flush();

  // The workspace-relative path of the session's current file ("" when none is open).
  std::string PathOf(const std::string& session) const;

 private:
  struct Notebook {
    nlohmann::json nb;
    std::string path;    // "" when this session is not recorded (too many files of its name)
    uint64_t bytes = 0;  // the file's size once written: exact after a write, estimated between
    std::string pending_code;
    bool dirty = false;  // has cells the file does not
    bool ended = false;  // the session ended: leaves memory once written
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
  // Marks `n` for the next write, and posts one unless one is on its way.
  void Changed(Notebook& n);
  void Write(Notebook& n);

  EventLoop* loop_;
  std::shared_ptr<workspace::Workspace> ws_;
  const workspace::DiskBudget* disk_;
  uint64_t max_bytes_;
  bool write_posted_ = false;
  // A posted write that outlives the recorder finds this expired.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::map<std::string, Notebook> open_;
};

}  // namespace mcpx::session
