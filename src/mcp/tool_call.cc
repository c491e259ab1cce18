#include "mcp/tool_call.h"

#include <cmath>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

namespace mcpx::mcp {

ToolCallImpl::ToolCallImpl(std::shared_ptr<Connection> connection, json id, std::string tool,
                           json arguments, json progress_token)
    : connection_(std::move(connection)),
      id_(std::move(id)),
      key_(Serialize(id_)),
      tool_(std::move(tool)),
      arguments_(std::move(arguments)),
      progress_token_(std::move(progress_token)) {}

ToolCallImpl::~ToolCallImpl() {
  if (finished_ || cancelled_ || !connection_->attached()) return;
  try {
    spdlog::error("tool '{}' dropped call {} without a result", tool_, key_);
    Untrack();
    connection_->Send(MakeResult(
        id_, ErrorResult("internal error: tool '" + tool_ + "' ended without a result")));
  } catch (...) {
    // A destructor must not throw; the error is already logged if logging worked.
  }
}

void ToolCallImpl::Untrack() {
  auto& table = connection_->in_flight();
  auto it = table.find(key_);
  // The entry may already belong to a newer request that reused the id.
  if (it != table.end() && (it->second.expired() || it->second.lock().get() == this)) {
    table.erase(it);
  }
}

json ToolCallImpl::Checked(json result) const {
  if (!result.is_object()) {
    spdlog::error("tool '{}' returned {} instead of a result object", tool_, TypeName(result));
    return ErrorResult("internal error: tool '" + tool_ + "' returned an invalid result");
  }
  auto content = result.find("content");
  if (content == result.end() || !content->is_array()) {
    spdlog::error("tool '{}' returned a result without a content array", tool_);
    return ErrorResult("internal error: tool '" + tool_ + "' returned an invalid result");
  }
  if (auto e = result.find("isError"); e != result.end() && !e->is_boolean()) {
    result["isError"] = true;
  }
  if (auto s = result.find("structuredContent"); s != result.end() && !s->is_object()) {
    spdlog::error("tool '{}' returned non-object structuredContent; dropped", tool_);
    result.erase(s);
  }
  return result;
}

void ToolCallImpl::Finish(json result) {
  if (finished_) return;
  finished_ = true;
  Untrack();
  if (cancelled_) return;
  connection_->Send(MakeResult(id_, Checked(std::move(result))));
}

void ToolCallImpl::Progress(double progress, std::optional<double> total, std::string message) {
  if (!wants_progress() || finished_ || cancelled_ || !std::isfinite(progress)) return;
  if (last_progress_ && progress <= *last_progress_) {
    spdlog::debug("tool '{}': progress {} does not move past {}; not sent", tool_, progress,
                  *last_progress_);
    return;
  }
  last_progress_ = progress;
  json params{{"progressToken", progress_token_}, {"progress", progress}};
  if (total && std::isfinite(*total)) params["total"] = *total;
  if (!message.empty()) params["message"] = std::move(message);
  connection_->Send(MakeNotification("notifications/progress", std::move(params)));
}

void ToolCallImpl::OnCancel(std::function<void()> cb) {
  if (finished_) return;
  if (cancelled_) {
    // Registered after the cancellation arrived: it still has to run, once.
    if (cb) cb();
    return;
  }
  on_cancel_ = std::move(cb);
}

void ToolCallImpl::Cancel(const std::string& reason) {
  if (finished_ || cancelled_) return;
  cancelled_ = true;
  Untrack();
  spdlog::info("call {} to '{}' cancelled by the client{}{}", key_, tool_,
               reason.empty() ? "" : ": ", reason);
  auto cb = std::exchange(on_cancel_, nullptr);
  if (!cb) return;
  try {
    cb();
  } catch (const std::exception& e) {
    spdlog::error("tool '{}': cancel handler failed: {}", tool_, e.what());
  } catch (...) {
    spdlog::error("tool '{}': cancel handler failed", tool_);
  }
}

void ToolCallImpl::Log(std::string_view level, std::string message) {
  std::optional<LogLevel> parsed = ParseLogLevel(level);
  if (!parsed) parsed = level == "warn" ? LogLevel::kWarning : LogLevel::kInfo;
  connection_->Log(*parsed, tool_, std::move(message));
}

}  // namespace mcpx::mcp
