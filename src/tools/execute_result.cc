#include "tools/execute_result.h"

#include <string>
#include <utility>

#include "mcp/tool.h"

namespace mcpx::tools {
namespace {

using json = nlohmann::json;
using session::ExecStatus;

json OrNull(const auto& v) { return v ? json(*v) : json(nullptr); }

// The readable text block, for clients that ignore structuredContent.
std::string TextBlock(const session::ExecOutcome& o) {
  std::string text;
  auto add = [&text](const std::string& part) {
    if (part.empty()) return;
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += part;
  };
  for (const auto& n : o.notes) add("[note] " + n);
  add(o.stdout_text);
  if (!o.stderr_text.empty()) add("[stderr]\n" + o.stderr_text);
  if (o.result) add("Out[" + std::to_string(o.execution_count) + "]: " + *o.result);
  if (o.error)
    add(o.error->traceback.empty() ? o.error->type + ": " + o.error->message : o.error->traceback);
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
  for (const auto& p : o.saved_files) add("[saved] " + p);
  if (text.empty()) text = "(no output)";
  return text;
}

}  // namespace

json ExecuteOutputSchema() {
  const json nullable_string = {{"type", json::array({"string", "null"})}};
  return {{"type", "object"},
          {"properties",
           {{"session", {{"type", "string"}}},
            {"status",
             {{"type", "string"}, {"enum", {"ok", "error", "timeout", "cancelled", "killed"}}}},
            {"execution_count", {{"type", "integer"}}},
            {"stdout", {{"type", "string"}}},
            {"stderr", {{"type", "string"}}},
            {"result", nullable_string},
            {"error",
             {{"type", json::array({"object", "null"})},
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
            {"cpu_ms", {{"type", json::array({"number", "null"})}}},
            {"peak_memory_bytes", {{"type", json::array({"integer", "null"})}}},
            {"kill_reason", nullable_string},
            {"saved_files", {{"type", "array"}, {"items", {{"type", "string"}}}}},
            {"notes", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
          {"required",
           {"session", "status", "execution_count", "stdout", "stderr", "result", "error", "images",
            "truncated", "duration_ms", "cpu_ms", "peak_memory_bytes", "kill_reason"}}};
}

json ExecuteResult(const session::ExecOutcome& o) {
  json images = json::array();
  json content = json::array({mcp::TextContent(TextBlock(o))});
  for (const auto& img : o.images) {
    images.push_back({{"mime_type", "image/png"},
                      {"width", img.width},
                      {"height", img.height},
                      {"bytes", img.bytes}});
    content.push_back({{"type", "image"}, {"data", img.data}, {"mimeType", "image/png"}});
  }
  json error = nullptr;
  if (o.error) {
    error = {
        {"type", o.error->type}, {"message", o.error->message}, {"traceback", o.error->traceback}};
  }
  json structured = {
      {"session", o.session},
      {"status", session::ExecStatusName(o.status)},
      {"execution_count", o.execution_count},
      {"stdout", o.stdout_text},
      {"stderr", o.stderr_text},
      {"result", OrNull(o.result)},
      {"error", std::move(error)},
      {"images", std::move(images)},
      {"truncated", o.truncated},
      {"duration_ms", o.duration_ms},
      {"cpu_ms", OrNull(o.cpu_ms)},
      {"peak_memory_bytes", OrNull(o.peak_memory_bytes)},
      {"kill_reason", o.status == ExecStatus::kKilled ? json(o.kill_reason) : json(nullptr)},
      {"saved_files", o.saved_files},
      {"notes", o.notes}};
  return json{{"content", std::move(content)},
              {"structuredContent", std::move(structured)},
              {"isError", o.status != ExecStatus::kOk}};
}

}  // namespace mcpx::tools
