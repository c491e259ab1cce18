#include "session/notebook_recorder.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "session/notebook.h"
#include "util/units.h"

namespace mcpx::session {
namespace {

using json = nlohmann::json;

// Past this many files of one session's series the record stops (a sandbox that plants a
// thousand names must not make the server try them all).
constexpr int kMaxFiles = 1000;

// `S.ipynb`, then `S-2.ipynb`, `S-3.ipynb`, ...
std::string FileName(const std::string& session, int i) {
  return std::string(kNotebooksDir) + "/" + session +
         (i == 1 ? std::string() : "-" + std::to_string(i)) + ".ipynb";
}

json StateLostCell(const std::string& why) {
  return notebook::MarkdownCell("**Kernel restarted, state lost**: " + why +
                                    ". Variables and imports from the cells above are gone.",
                                notebook::kStateLostKind);
}

// What `cell` adds to the file: its text one level deeper than alone (two more spaces a line),
// the separator and its id line. An estimate (the cap is checked before a write, which is
// posted); the write makes it exact again.
uint64_t CellBytes(const json& cell) {
  const std::string text = cell.dump(1, ' ', false, json::error_handler_t::replace);
  const auto lines = static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  return text.size() + 2 * lines + 2 + 32;
}

}  // namespace

NotebookRecorder::NotebookRecorder(EventLoop* loop, std::shared_ptr<workspace::Workspace> ws,
                                   const workspace::DiskBudget* disk, uint64_t max_bytes)
    : loop_(loop), ws_(std::move(ws)), disk_(disk), max_bytes_(max_bytes) {}

NotebookRecorder::~NotebookRecorder() { Flush(); }

std::string NotebookRecorder::PathOf(const std::string& session) const {
  auto it = open_.find(session);
  return it == open_.end() ? std::string() : it->second.path;
}

void NotebookRecorder::Started(const std::string& session, std::string code) {
  Open(session).pending_code = std::move(code);
}

void NotebookRecorder::Record(const ExecOutcome& outcome) {
  Notebook& n = Open(outcome.session);
  const std::string code = std::exchange(n.pending_code, "");
  json lean = outcome.images.empty() ? json() : notebook::CodeCell(code, outcome, false);
  Append(outcome.session, n, notebook::CodeCell(code, outcome, true), std::move(lean));
}

void NotebookRecorder::StateLost(const std::string& session, const std::string& why,
                                 bool session_ended) {
  auto it = open_.find(session);
  if (it == open_.end()) return;
  it->second.ended = session_ended;
  Append(session, it->second, StateLostCell(why), json());
}

NotebookRecorder::Notebook& NotebookRecorder::Open(const std::string& session) {
  auto it = open_.find(session);
  if (it == open_.end()) it = open_.emplace(session, Pick(session)).first;
  it->second.ended = false;  // a new cell of an ended session before its write: carry on
  return it->second;
}

NotebookRecorder::Folder NotebookRecorder::ListFolder(const std::string& session) const {
  Folder f;
  if (auto listing = ws_->List(kNotebooksDir); listing.ok()) {
    for (const auto& e : listing->entries) {
      f.taken.insert(e.path);
      if (e.type == workspace::FileType::kFile) f.sizes[e.path] = e.size;
    }
  } else if (listing.status().code() != Code::kNotFound) {
    spdlog::warn("session {}: cannot list {}: {}", session, kNotebooksDir,
                 listing.status().ToString());
  }
  return f;
}

int NotebookRecorder::FirstFree(const std::string& session, const Folder& f) {
  int i = 1;
  while (i <= kMaxFiles && f.taken.count(FileName(session, i)) != 0) ++i;
  if (i > kMaxFiles) {
    spdlog::warn("session {}: {} already holds {} files of this session's name; not recording",
                 session, kNotebooksDir, kMaxFiles);
  }
  return i;
}

NotebookRecorder::Notebook NotebookRecorder::Pick(const std::string& session) const {
  const Folder folder = ListFolder(session);
  const int i = FirstFree(session, folder);
  if (i > 1) {
    // Continue the newest file of the series if it is this session's record and has room.
    const std::string last = FileName(session, i - 1);
    auto size = folder.sizes.find(last);
    if (size != folder.sizes.end() && size->second < max_bytes_) {
      auto read = ws_->Read(last, 0, max_bytes_);
      auto nb =
          read.ok() ? notebook::ParseRecord(read->data, session) : Result<json>(read.status());
      if (nb.ok()) {
        Notebook n{std::move(nb).value(), last, read->size, ""};
        if (!notebook::EndsWithStateLost(n.nb)) {
          json marker = StateLostCell("the server was restarted");
          n.bytes += CellBytes(marker);
          notebook::AppendCell(n.nb, std::move(marker));
          n.dirty = true;
        }
        return n;
      }
      spdlog::info("session {}: not appending to {} ({}); the record goes to {}", session, last,
                   nb.status().message(), FileName(session, i));
    }
  }
  json nb = notebook::NewNotebook(session);
  const uint64_t bytes = notebook::Serialize(nb).size();
  return Notebook{std::move(nb), i > kMaxFiles ? "" : FileName(session, i), bytes, ""};
}

NotebookRecorder::Notebook NotebookRecorder::NextFile(const std::string& session,
                                                      const Notebook& full) const {
  Folder folder = ListFolder(session);
  folder.taken.insert(full.path);  // even when its last write failed
  const int i = FirstFree(session, folder);
  json nb = notebook::NewNotebook(session);
  notebook::AppendCell(
      nb, notebook::MarkdownCell("Continued from `" + full.path + "`, which reached the record's " +
                                 MiB(max_bytes_) + " cap; the kernel and its state carry over."));
  const uint64_t bytes = notebook::Serialize(nb).size();
  return Notebook{std::move(nb), i > kMaxFiles ? "" : FileName(session, i), bytes, ""};
}

void NotebookRecorder::Append(const std::string& session, Notebook& n, json cell, json lean) {
  if (n.path.empty()) return;  // not recording this session
  for (bool fresh = false;; fresh = true) {
    if (n.bytes + CellBytes(cell) <= max_bytes_) {
      n.bytes += CellBytes(cell);
      notebook::AppendCell(n.nb, std::move(cell));
      return Changed(n);
    }
    if (fresh) {
      // A cell bigger than a whole file keeps a note per image instead, and the new file takes
      // it even past the cap: there is nowhere else for it.
      json& c = lean.is_null() ? cell : lean;
      n.bytes += CellBytes(c);
      notebook::AppendCell(n.nb, std::move(c));
      return Changed(n);
    }
    // The full file gets its last cells, and the record goes on in the next free name of the
    // series.
    Write(n);
    const bool ended = n.ended;
    Notebook next = NextFile(session, n);
    next.pending_code = std::move(n.pending_code);
    next.ended = ended;
    n = std::move(next);
  }
}

void NotebookRecorder::Changed(Notebook& n) {
  n.dirty = true;
  if (loop_ == nullptr) return Flush();
  if (write_posted_) return;
  write_posted_ = true;
  // A little later rather than at once: back-to-back cells share one write (and its fsync)
  // instead of each paying for a rewrite before the next call is read.
  loop_->AddTimer(std::chrono::milliseconds(kWriteDelayMs),
                  [this, alive = std::weak_ptr<bool>(alive_)] {
                    if (alive.expired()) return;
                    write_posted_ = false;
                    Flush();
                  });
}

void NotebookRecorder::Flush() {
  for (auto it = open_.begin(); it != open_.end();) {
    Write(it->second);
    it = it->second.ended ? open_.erase(it) : std::next(it);
  }
}

void NotebookRecorder::Write(Notebook& n) {
  if (!n.dirty || n.path.empty()) return;
  const std::string text = notebook::Serialize(n.nb);
  n.bytes = text.size();
  auto w = workspace::WriteWithinReserve(*ws_, disk_, n.path, text);
  if (!w.ok()) {
    spdlog::warn("notebook record {} not written this time: {}", n.path, w.status().ToString());
    return;
  }
  n.dirty = false;
}

}  // namespace mcpx::session
