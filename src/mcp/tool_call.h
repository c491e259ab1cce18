// One tools/call request in flight: the ToolCall the tool sees.
//
// The response is sent at most once: Finish() after Finish() or after the client cancelled sends
// nothing. Progress goes out only when the request carried _meta.progressToken, only while the
// call runs, and only when it moves forward (clients may reject progress that goes back).
//
// A call bound to a task (tasks.h) hands its result, progress text and cancellation to the task
// instead: its request was already answered with the task handle.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "mcp/connection.h"
#include "mcp/tasks.h"
#include "mcp/tool.h"

namespace mcpx::mcp {

// What the request said about how to answer it.
struct CallContext {
  json progress_token = nullptr;      // null: no progress wanted
  bool modern = false;                // a 2026-07-28 request (request_meta.h)
  std::optional<LogLevel> log_level;  // modern: the request's logLevel; none means no log messages
  json server_info = nullptr;         // modern: the _meta of every result
  bool may_become_task = false;       // a task may take the progress text, token or not
};

class ToolCallImpl : public ToolCall, public std::enable_shared_from_this<ToolCallImpl> {
 public:
  // With no progress notification for this long, Keepalive() sends one.
  static constexpr int64_t kKeepaliveMs = 5000;

  ToolCallImpl(std::shared_ptr<Connection> connection, json id, std::string tool, json arguments,
               CallContext context);
  // A call dropped without Finish() still gets an answer, so the client is never left waiting.
  ~ToolCallImpl() override;

  const json& arguments() const override { return arguments_; }
  void Finish(json result) override;
  bool finished() const override { return finished_; }

  bool wants_progress() const override {
    return !context_.progress_token.is_null() || context_.may_become_task || task_ != nullptr;
  }
  void Progress(double progress, std::optional<double> total, std::string message) override;

  void OnCancel(std::function<void()> cb) override;
  bool cancelled() const override { return cancelled_; }

  void Log(std::string_view level, std::string message) override;

  // notifications/cancelled (or tasks/cancel) named this call.
  void Cancel(const std::string& reason);

  // From now on the result, progress and cancellation go to `task`.
  void BindTask(std::shared_ptr<Task> task);
  // Modern era: answers the request with the task handle (resultType "task"), then binds.
  void PromoteToTask(std::shared_ptr<Task> task);

  // A progress notification when the client waits on this request, wants progress and has had
  // none for kKeepaliveMs: SDK clients that reset their timeout on progress keep waiting.
  // Returns whether the call still wants keepalives.
  bool Keepalive(int64_t now_ms);

  const json& id() const { return id_; }

 private:
  // Stops tracking this call in the connection's in-flight table.
  void Untrack();
  // The result to the client, or to the bound task.
  void Deliver(json result);
  // A result that is not a CallToolResult-shaped object becomes an isError result.
  json Checked(json result) const;
  void SendProgress(int64_t now_ms, double progress, std::optional<double> total,
                    std::string message);

  std::shared_ptr<Connection> connection_;
  json id_;
  std::string key_;  // serialized id, the in-flight table key
  std::string tool_;
  json arguments_;
  CallContext context_;
  std::shared_ptr<Task> task_;
  std::optional<double> last_progress_;
  int64_t last_sent_ms_;
  int64_t started_ms_;
  std::function<void()> on_cancel_;
  bool finished_ = false;
  bool cancelled_ = false;
};

}  // namespace mcpx::mcp
