// SessionManager: what a finished call's output becomes in its outcome. Long streams are saved
// whole in the workspace; every saved file (those and the kernel's images past max_images) is
// counted against the saved-outputs caps, which remove the oldest.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "session/manager.h"
#include "session/manager_state.h"
#include "util/text.h"
#include "util/units.h"

namespace mcpx::session {
namespace {

// Names at most three removed files; the reply stays short when a cap sweeps many.
std::string RotationNote(const std::vector<std::string>& removed, const SessionSettings& caps) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < removed.size() && i < 3; ++i) {
    shown.push_back(InSandbox(removed[i]));
  }
  std::string note = "removed " + std::to_string(removed.size()) +
                     " older saved output file(s) to keep .mcp-executor/outputs within " +
                     MiB(caps.saved_outputs_session_bytes) + " a session, " +
                     MiB(caps.saved_outputs_bytes) + " in all: " + Join(shown, ", ");
  if (removed.size() > shown.size()) note += ", ...";
  return note;
}

}  // namespace

StreamOutput SessionManager::CaptureStream(const Session& s, Execution& e, int stream) {
  OutputBuffer& buf = *e.out[stream];
  buf.Finish();
  StreamOutput so;
  so.budget = options_.settings.output_bytes;
  so.bytes = buf.total_bytes();
  so.lines = buf.total_lines();
  so.full = buf.View(so.budget);
  so.brief = buf.View(std::min(kBriefOutputBytes, so.budget));
  if (!buf.truncated()) return so;
  // Long output: head and tail inline, everything in a workspace file.
  const std::string rel = std::string(kOutputsDir) + "/" + s.name + "-" +
                          std::to_string(e.execution_count) +
                          (stream == 2 ? "-stderr.txt" : "-stdout.txt");
  so.save_error = buf.spill_error();
  if (buf.spilled_bytes() == 0) return so;
  const std::string& spill = e.spill[stream];
  auto w = workspace::WriteWithinReserve(*ws_, disk_.get(), rel, spill);
  if (!w.ok()) {
    spdlog::warn("cannot save long output to {}: {}", rel, w.status().ToString());
    so.save_error = w.status().ToString();
    return so;
  }
  so.saved = InSandbox(rel);
  so.saved_bytes = spill.size();
  e.spill[stream].clear();
  e.spill[stream].shrink_to_fit();
  return so;
}

void SessionManager::CountSavedOutputFiles(const Session& s, ExecOutcome& out) {
  if (!saved_) return;
  std::vector<std::string> mine;
  for (const std::string& p : out.saved_files) {
    // Only what lies in the outputs folder: a kernel's reply names the files it saved, and a
    // hostile one must not get the server to remove anything else.
    auto rel = ws_->Confine(p);
    if (rel.ok() && rel->rfind(std::string(kOutputsDir) + "/", 0) == 0) mine.push_back(*rel);
  }
  const std::vector<std::string> removed = saved_->Add(s.name, mine);
  if (!removed.empty()) {
    out.notes.push_back(RotationNote(removed, options_.settings));
  }
}

}  // namespace mcpx::session
