#include "mcp/tool_call.h"

#include <cmath>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "mcp/request_meta.h"
#include "util/event_loop.h"

namespace mcpx::mcp {

ToolCallImpl::ToolCallImpl(std::shared_ptr<Connection> connection, json id, std::string tool,
                           json arguments, CallContext context)
    : connection_(std::move(connection)),
      id_(std::move(id)),
      key_(Serialize(id_)),
      tool_(std::move(tool)),
      arguments_(std::move(arguments)),
      context_(std::move(context)),
      last_sent_ms_(EventLoop::NowMs()),
      started_ms_(last_sent_ms_) {}

ToolCallImpl::~ToolCallImpl() {
  if (finished_ || cancelled_ || !connection_->attached()) return;
  try {
    spdlog::error("tool '{}' dropped call {} without a result", tool_, key_);
    Deliver(ErrorResult("internal error: tool '" + tool_ + "' ended without a result"));
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
  Deliver(Checked(std::move(result)));
}

void ToolCallImpl::Deliver(json result) {
  if (task_) {
    // A modern task's tasks/get carries a complete result; the server's name is on tasks/get.
    if (task_->modern()) result["resultType"] = "complete";
    return task_->Complete(std::move(result));
  }
  Untrack();
  connection_->Send(MakeResult(id_, context_.modern
                                        ? ModernResult(std::move(result), context_.server_info)
                                        : std::move(result)));
}

void ToolCallImpl::Progress(double progress, std::optional<double> total, std::string message) {
  if (finished_ || cancelled_ || !std::isfinite(progress)) return;
  if (task_) task_->SetMessage(message);
  // A modern task's request is answered: nothing more goes out for it. A legacy task keeps its
  // progress token for its whole life.
  if (context_.progress_token.is_null() || (task_ && task_->modern())) return;
  if (last_progress_ && progress <= *last_progress_) {
    spdlog::debug("tool '{}': progress {} does not move past {}; not sent", tool_, progress,
                  *last_progress_);
    return;
  }
  SendProgress(EventLoop::NowMs(), progress, total, std::move(message));
}

void ToolCallImpl::SendProgress(int64_t now_ms, double progress, std::optional<double> total,
                                std::string message) {
  last_progress_ = progress;
  last_sent_ms_ = now_ms;
  json params{{"progressToken", context_.progress_token}, {"progress", progress}};
  if (total && std::isfinite(*total)) params["total"] = *total;
  if (!message.empty()) params["message"] = std::move(message);
  connection_->Send(MakeNotification("notifications/progress", std::move(params)));
}

bool ToolCallImpl::Keepalive(int64_t now_ms) {
  if (finished_ || cancelled_ || task_ || context_.progress_token.is_null()) return false;
  if (now_ms - last_sent_ms_ < kKeepaliveMs) return true;
  // A hair past the last value: it must move forward, and must not overtake the tool's own
  // next step (install_package counts steps, execute_python seconds).
  const double progress = last_progress_.value_or(0) + 0.001;
  SendProgress(now_ms, progress, std::nullopt,
               "still working (" + std::to_string((now_ms - started_ms_) / 1000) + " s)");
  return true;
}

void ToolCallImpl::BindTask(std::shared_ptr<Task> task) {
  Untrack();  // notifications/cancelled no longer applies: tasks/cancel does
  task_ = std::move(task);
  std::weak_ptr<ToolCallImpl> self = weak_from_this();
  task_->OnCancel([self] {
    if (auto call = self.lock()) call->Cancel("tasks/cancel");
  });
}

void ToolCallImpl::PromoteToTask(std::shared_ptr<Task> task) {
  json handle = task->ModernWire(false);
  handle["resultType"] = "task";
  connection_->Send(MakeResult(id_, ModernResult(std::move(handle), context_.server_info)));
  BindTask(std::move(task));
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
  if (!context_.modern) return connection_->Log(*parsed, tool_, std::move(message));
  // 2026-07-28: only for a request that set a level, and only while it is open.
  if (!context_.log_level || *parsed < *context_.log_level || task_ || finished_) return;
  connection_->SendLog(*parsed, tool_, std::move(message));
}

}  // namespace mcpx::mcp
