#include "tools/execute_result.h"

#include <string>
#include <utility>

#include "mcp/tool.h"
#include "session/output_buffer.h"
#include "session/stream_text.h"
#include "util/units.h"

namespace mcpx::tools {
namespace {

using json = nlohmann::json;
using session::ExecStatus;
using session::OutputView;
using session::StreamOutput;

// The stream as one half shows it: the full view, or the brief one pointing at the other half.
std::string StreamText(const StreamOutput& so, bool full, const std::string& other_half) {
  if (full) return session::FullText(so);
  if (!so.brief.cut) return so.brief.head;
  std::string marker = session::OmittedText(*so.brief.cut) + " here; ";
  if (so.full.cut) {
    marker += other_half + " has " + HumanSize(so.full.head.size() + so.full.tail.size()) +
              " of head and tail; " + session::SavedText(so, *so.brief.cut) + "]";
  } else {
    marker += "all of it is in " + other_half + "]";
  }
  return session::RenderView(so.brief, marker);
}

// A long value (a DataFrame's table, a traceback) cut the same way for the brief half.
std::string BriefOf(const std::string& text, const std::string& other_half) {
  session::OutputBuffer buf(text.size() + 1, 0, nullptr);
  buf.Append(text);
  buf.Finish();
  const OutputView v = buf.View(session::kBriefOutputBytes);
  if (!v.cut) return text;
  return session::RenderView(
      v, session::OmittedText(*v.cut) + " here; all of it is in " + other_half + "]");
}

struct Texts {
  std::string out, err, result, traceback;
};

// One half's texts: `full` or brief; `text_is_full` says which half has the full ones.
Texts HalfTexts(const session::ExecOutcome& o, bool full, bool text_is_full) {
  Texts t;
  const auto other = [&](const char* field) {
    return text_is_full ? std::string("the text content")
                        : std::string("structuredContent.") + field;
  };
  t.out = StreamText(o.out, full, other("stdout"));
  t.err = StreamText(o.err, full, other("stderr"));
  if (o.result) t.result = full ? *o.result : BriefOf(*o.result, other("result"));
  if (o.error) {
    t.traceback = full ? o.error->traceback : BriefOf(o.error->traceback, other("error.traceback"));
  }
  return t;
}

// The readable text block.
std::string TextBlock(const session::ExecOutcome& o, const Texts& t) {
  std::string text;
  auto add = [&text](const std::string& part) {
    if (part.empty()) return;
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += part;
  };
  for (const auto& n : o.notes) add("[note] " + n);
  add(t.out);
  if (!t.err.empty()) add("[stderr]\n" + t.err);
  if (o.result) {
    // A table's header stays in line with its columns.
    const bool multiline = t.result.find('\n') != std::string::npos;
    add("Out[" + std::to_string(o.execution_count) + "]:" + (multiline ? "\n" : " ") + t.result);
  }
  if (o.error) add(t.traceback.empty() ? o.error->type + ": " + o.error->message : t.traceback);
  switch (o.status) {
    case ExecStatus::kTimeout:
      add("[status] timeout: interrupted after " + std::to_string(o.timeout_s) +
          " s; the session keeps its state");
      break;
    case ExecStatus::kCancelled:
      add("[status] cancelled: interrupted; the session keeps its state");
      break;
    case ExecStatus::kKilled:
      add("[status] killed: " + o.kill_reason +
          "; the session's state is lost and the next call starts a fresh kernel");
      break;
    case ExecStatus::kOk:
    case ExecStatus::kError:
      break;
  }
  // Files a marker or a note has not named already (the kernel names images saved past
  // max_images as ".../20261207-031703-cell4-image{6..10}.png").
  for (const auto& p : o.saved_files) {
    bool named = text.find(p) != std::string::npos;
    if (!named && p.size() > 4 && p.ends_with(".png")) {
      const size_t stem = p.find_last_not_of("0123456789", p.size() - 5);
      named =
          stem != std::string::npos && text.find(p.substr(0, stem + 1) + "{") != std::string::npos;
    }
    if (!named) add("[saved] " + p);
  }
  if (text.empty()) text = "(no output)";
  return text;
}

}  // namespace

json ExecuteOutputSchema() {
  // No `"type": [..., "null"]` unions (some clients' schema subsets cannot express them): a
  // field that has no value is left out.
  return {{"type", "object"},
          {"properties",
           {{"session", {{"type", "string"}}},
            {"status",
             {{"type", "string"}, {"enum", {"ok", "error", "timeout", "cancelled", "killed"}}}},
            {"execution_count", {{"type", "integer"}}},
            {"stdout", {{"type", "string"}}},
            {"stderr", {{"type", "string"}}},
            {"result",
             {{"type", "string"}, {"description", "repr of the last expression, when it has one"}}},
            {"error",
             {{"type", "object"},
              {"properties",
               {{"type", {{"type", "string"}}},
                {"message", {{"type", "string"}}},
                {"traceback", {{"type", "string"}}}}},
              {"required", {"type", "message", "traceback"}}}},
            {"images",
             {{"type", "array"},
              {"items",
               {{"type", "object"},
                {"properties",
                 {{"mime_type", {{"type", "string"}}},
                  {"width", {{"type", "integer"}}},
                  {"height", {{"type", "integer"}}},
                  {"bytes", {{"type", "integer"}}}}},
                {"required", {"mime_type", "width", "height", "bytes"}}}}}},
            {"truncated", {{"type", "boolean"}}},
            {"duration_ms", {{"type", "number"}}},
            {"cpu_ms", {{"type", "number"}}},
            {"peak_memory_bytes", {{"type", "integer"}}},
            {"kill_reason", {{"type", "string"}}},
            {"saved_files", {{"type", "array"}, {"items", {{"type", "string"}}}}},
            {"notes", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
          {"required",
           {"session", "status", "execution_count", "stdout", "stderr", "images", "truncated",
            "duration_ms"}}};
}

// Clients show a model one half of a result, not both (docs/REPLIES.md): Claude Code passes
// structuredContent of a successful call and the text block of a failed one; other clients pass
// the text block. So the half a client most likely shows carries the output within the policy's
// budget, and the other half a short view (session::kBriefOutputBytes a stream) with a marker
// naming where the rest is.
json ExecuteResult(const session::ExecOutcome& o) {
  const bool failed = o.status != ExecStatus::kOk;
  const Texts for_text = HalfTexts(o, failed, failed);
  const Texts for_struct = HalfTexts(o, !failed, failed);

  json images = json::array();
  json content = json::array({mcp::TextContent(TextBlock(o, for_text))});
  for (const auto& img : o.images) {
    images.push_back({{"mime_type", "image/png"},
                      {"width", img.width},
                      {"height", img.height},
                      {"bytes", img.bytes}});
    content.push_back({{"type", "image"}, {"data", img.data}, {"mimeType", "image/png"}});
  }
  json structured = {{"session", o.session},
                     {"status", session::ExecStatusName(o.status)},
                     {"execution_count", o.execution_count},
                     {"stdout", for_struct.out},
                     {"stderr", for_struct.err},
                     {"images", std::move(images)},
                     {"truncated", o.truncated},
                     {"duration_ms", o.duration_ms}};
  if (o.result) structured["result"] = for_struct.result;
  if (o.error) {
    structured["error"] = {{"type", o.error->type},
                           {"message", o.error->message},
                           {"traceback", for_struct.traceback}};
  }
  if (o.cpu_ms) structured["cpu_ms"] = *o.cpu_ms;
  if (o.peak_memory_bytes) structured["peak_memory_bytes"] = *o.peak_memory_bytes;
  if (o.status == ExecStatus::kKilled) structured["kill_reason"] = o.kill_reason;
  if (!o.saved_files.empty()) structured["saved_files"] = o.saved_files;
  if (!o.notes.empty()) structured["notes"] = o.notes;
  return json{{"content", std::move(content)},
              {"structuredContent", std::move(structured)},
              {"isError", failed}};
}

}  // namespace mcpx::tools
