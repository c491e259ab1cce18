#include "session/notebook.h"

#include <cstdio>
#include <set>
#include <utility>
#include <vector>

#include "session/stream_text.h"

namespace mcpx::session::notebook {
namespace {

using json = nlohmann::json;

// nbformat's multi-line string: lines with their '\n', the last one without when the text does
// not end with one.
json Lines(std::string_view text) {
  json lines = json::array();
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    lines.push_back(std::string(text.substr(0, end)));
    text.remove_prefix(end);
  }
  return lines;
}

json Stream(std::string_view name, std::string_view text) {
  return {{"output_type", "stream"}, {"name", name}, {"text", Lines(text)}};
}

std::string Seconds(double s) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

json ErrorOutput(const ErrorInfo& e) {
  json traceback = json::array();
  std::string_view tb = e.traceback;
  while (!tb.empty()) {
    const size_t nl = tb.find('\n');
    traceback.push_back(std::string(tb.substr(0, nl)));
    tb.remove_prefix(nl == std::string_view::npos ? tb.size() : nl + 1);
  }
  if (traceback.empty()) traceback.push_back(e.type + ": " + e.message);
  return {{"output_type", "error"},
          {"ename", e.type},
          {"evalue", e.message},
          {"traceback", std::move(traceback)}};
}

json Image(const CheckedImage& img, bool keep) {
  const std::string size = std::to_string(img.width) + "x" + std::to_string(img.height);
  if (!keep) {
    return {{"output_type", "display_data"},
            {"data",
             {{"text/plain", Lines("[image " + size + ", " + std::to_string(img.bytes) +
                                   " bytes: not kept, this notebook reached its size cap]")}}},
            {"metadata", json::object()}};
  }
  return {{"output_type", "display_data"},
          {"data", {{"image/png", img.data}, {"text/plain", Lines("<image " + size + ">")}}},
          {"metadata", json::object()}};
}

// What the reply's text says besides the streams: its notes, saved files and how the call ended.
std::string ServerNote(const ExecOutcome& o) {
  std::string text;
  for (const auto& n : o.notes) text += "[note] " + n + "\n";
  for (const auto& p : o.saved_files) text += "[saved] " + p + "\n";
  switch (o.status) {
    case ExecStatus::kTimeout:
      text += "[status] timeout: interrupted after " + Seconds(o.timeout_s) +
              " s; the session kept its state\n";
      break;
    case ExecStatus::kCancelled:
      text += "[status] cancelled: interrupted; the session kept its state\n";
      break;
    case ExecStatus::kKilled:
      text += "[status] killed: " + o.kill_reason + "; the kernel's state was lost\n";
      break;
    case ExecStatus::kOk:
    case ExecStatus::kError:
      break;
  }
  return text;
}

}  // namespace

json NewNotebook(const std::string& session) {
  return {
      {"nbformat", 4},
      {"nbformat_minor", 5},
      {"metadata",
       {{"kernelspec", {{"name", "python3"}, {"display_name", "Python 3"}, {"language", "python"}}},
        {"language_info", {{"name", "python"}}},
        {kMetadataKey, {{"session", session}}}}},
      {"cells", json::array()}};
}

json CodeCell(const std::string& code, const ExecOutcome& o, bool keep_images) {
  json outputs = json::array();
  // The output as the reply's full half carries it: within the budget, marked.
  const std::string out = FullText(o.out), err = FullText(o.err);
  if (!out.empty()) outputs.push_back(Stream("stdout", out));
  if (!err.empty()) outputs.push_back(Stream("stderr", err));
  for (const auto& img : o.images) outputs.push_back(Image(img, keep_images));
  if (o.result) {
    outputs.push_back({{"output_type", "execute_result"},
                       {"execution_count", o.execution_count},
                       {"data", {{"text/plain", Lines(*o.result)}}},
                       {"metadata", json::object()}});
  }
  if (o.error) outputs.push_back(ErrorOutput(*o.error));
  if (std::string note = ServerNote(o); !note.empty()) outputs.push_back(Stream("stderr", note));
  return {
      {"cell_type", "code"},
      {"execution_count", o.execution_count},
      {"metadata",
       {{kMetadataKey, {{"status", ExecStatusName(o.status)}, {"duration_ms", o.duration_ms}}}}},
      {"source", Lines(code)},
      {"outputs", std::move(outputs)}};
}

json MarkdownCell(const std::string& text, std::string_view kind) {
  json metadata = json::object();
  if (!kind.empty()) metadata[kMetadataKey] = {{"kind", kind}};
  return {{"cell_type", "markdown"}, {"metadata", std::move(metadata)}, {"source", Lines(text)}};
}

void AppendCell(json& nb, json cell) {
  json& cells = nb["cells"];
  std::set<std::string> taken;
  for (const json& c : cells) {
    if (auto id = c.find("id"); id != c.end() && id->is_string()) taken.insert(*id);
  }
  size_t n = cells.size() + 1;
  while (taken.count("cell-" + std::to_string(n)) != 0) ++n;
  cell["id"] = "cell-" + std::to_string(n);
  cells.push_back(std::move(cell));
}

bool EndsWithStateLost(const json& nb) {
  const auto cells = nb.find("cells");
  if (cells == nb.end() || !cells->is_array() || cells->empty()) return false;
  // A reopened file's cells are only known to be objects (ParseRecord): look, never assume.
  const json* v = &cells->back();
  for (const char* key : {"metadata", kMetadataKey, "kind"}) {
    if (!v->is_object() || !v->contains(key)) return false;
    v = &(*v)[key];
  }
  return *v == kStateLostKind;
}

std::string Serialize(const json& nb) {
  return nb.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<json> ParseRecord(std::string_view text, const std::string& session) {
  json nb = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (nb.is_discarded() || !nb.is_object()) return InvalidArgument("not JSON");
  const auto major = nb.find("nbformat");
  const auto minor = nb.find("nbformat_minor");
  if (major == nb.end() || *major != 4 || minor == nb.end() || !minor->is_number_integer() ||
      *minor < 5) {
    return InvalidArgument("not an nbformat 4.5+ notebook");
  }
  const auto cells = nb.find("cells");
  if (cells == nb.end() || !cells->is_array()) return InvalidArgument("no cells array");
  for (const json& c : *cells) {
    if (!c.is_object()) return InvalidArgument("a cell is not an object");
  }
  const auto meta = nb.find("metadata");
  if (meta == nb.end() || !meta->is_object() || !meta->contains(kMetadataKey) ||
      !(*meta)[kMetadataKey].is_object() ||
      (*meta)[kMetadataKey].value("session", json()) != json(session)) {
    return InvalidArgument("not the record of session '" + session + "'");
  }
  return nb;
}

}  // namespace mcpx::session::notebook
