// One tools/call request in flight: the ToolCall the tool sees.
//
// The response is sent at most once: Finish() after Finish() or after the client cancelled sends
// nothing. Progress goes out only when the request carried _meta.progressToken, only while the
// call runs, and only when it moves forward (clients may reject progress that goes back).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "mcp/connection.h"
#include "mcp/tool.h"

namespace mcpx::mcp {

class ToolCallImpl : public ToolCall {
 public:
  // progress_token: null when the client asked for no progress.
  ToolCallImpl(std::shared_ptr<Connection> connection, json id, std::string tool, json arguments,
               json progress_token);
  // A call dropped without Finish() still gets an answer, so the client is never left waiting.
  ~ToolCallImpl() override;

  const json& arguments() const override { return arguments_; }
  void Finish(json result) override;
  bool finished() const override { return finished_; }

  bool wants_progress() const override { return !progress_token_.is_null(); }
  void Progress(double progress, std::optional<double> total, std::string message) override;

  void OnCancel(std::function<void()> cb) override;
  bool cancelled() const override { return cancelled_; }

  void Log(std::string_view level, std::string message) override;

  // notifications/cancelled named this call.
  void Cancel(const std::string& reason);

  const json& id() const { return id_; }

 private:
  // Stops tracking this call in the connection's in-flight table.
  void Untrack();
  // A result that is not a CallToolResult-shaped object becomes an isError result.
  json Checked(json result) const;

  std::shared_ptr<Connection> connection_;
  json id_;
  std::string key_;  // serialized id, the in-flight table key
  std::string tool_;
  json arguments_;
  json progress_token_;
  std::optional<double> last_progress_;
  std::function<void()> on_cancel_;
  bool finished_ = false;
  bool cancelled_ = false;
};

}  // namespace mcpx::mcp
