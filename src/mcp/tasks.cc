#include "mcp/tasks.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "mcp/request_meta.h"
#include "mcp/tool.h"
#include "util/event_loop.h"
#include "util/random.h"
#include "util/text.h"

namespace mcpx::mcp {

std::string_view TaskStatusName(TaskStatus status) {
  switch (status) {
    case TaskStatus::kWorking:
      return "working";
    case TaskStatus::kCompleted:
      return "completed";
    case TaskStatus::kCancelled:
      return "cancelled";
  }
  return {};  // not reached: the switch names every status
}

namespace {

// createdAt and lastUpdatedAt, in both eras.
std::string Timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  return UtcTimestamp(duration_cast<milliseconds>(t.time_since_epoch()).count(), /*millis=*/true);
}

}  // namespace

TaskClock TaskClock::Real() {
  return {&EventLoop::NowMs, [] { return std::chrono::system_clock::now(); }};
}

Task::Task(std::shared_ptr<Connection> connection, TaskClock clock, std::string id, bool modern,
           int64_t ttl_ms, std::string tool)
    : connection_(std::move(connection)),
      clock_(std::move(clock)),
      id_(std::move(id)),
      modern_(modern),
      ttl_ms_(ttl_ms),
      tool_(std::move(tool)),
      created_(clock_.wall()),
      updated_(created_),
      created_ms_(clock_.monotonic_ms()) {}

void Task::Transition(TaskStatus to) {
  status_ = to;
  updated_ = clock_.wall();
  spdlog::info("task {} ({}) is {}", id_, tool_, TaskStatusName(to));
  if (!modern_) SendLegacyStatus(clock_.monotonic_ms());
  AnswerWaiters();
}

void Task::Complete(json call_tool_result) {
  if (terminal()) return;
  result_ = std::move(call_tool_result);
  message_.clear();
  Transition(TaskStatus::kCompleted);
}

void Task::SetMessage(std::string message) {
  // Progress text is the cell's latest output: its final newline says nothing in a status line.
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
    message.pop_back();
  }
  if (terminal() || message.empty()) return;
  message_ = std::move(message);
  updated_ = clock_.wall();
  if (modern_) return;  // modern clients poll; status notifications need subscriptions/listen
  const int64_t now = clock_.monotonic_ms();
  if (now - last_status_ms_ >= kStatusEveryMs) SendLegacyStatus(now);
}

void Task::SendLegacyStatus(int64_t now_ms) {
  last_status_ms_ = now_ms;
  connection_->Send(MakeNotification("notifications/tasks/status", LegacyWire()));
}

bool Task::Cancel() {
  if (terminal()) return false;
  message_ = "cancelled by tasks/cancel";
  Transition(TaskStatus::kCancelled);
  if (auto interrupt = std::exchange(interrupt_, nullptr)) {
    try {
      interrupt();
    } catch (const std::exception& e) {
      spdlog::error("task {}: interrupting '{}' failed: {}", id_, tool_, e.what());
    }
  }
  return true;
}

json Task::Wire(bool modern) const {
  // The same fields in both eras; 2026-07-28 names its durations in milliseconds explicitly.
  json t{{"taskId", id_},
         {"status", TaskStatusName(status_)},
         {"createdAt", Timestamp(created_)},
         {"lastUpdatedAt", Timestamp(updated_)},
         {modern ? "ttlMs" : "ttl", ttl_ms_},
         {modern ? "pollIntervalMs" : "pollInterval", kPollIntervalMs}};
  if (!message_.empty()) t["statusMessage"] = message_;
  return t;
}

json Task::ModernWire(bool detailed) const {
  json t = Wire(true);
  if (detailed && status_ == TaskStatus::kCompleted) t["result"] = result_;
  return t;
}

json Task::LegacyResult() const {
  json result = status_ == TaskStatus::kCompleted
                    ? result_
                    : ErrorResult(
                          "the task was cancelled by tasks/cancel; the session keeps its "
                          "state");
  result["_meta"][std::string(meta::kRelatedTask)] = json{{"taskId", id_}};
  return result;
}

void Task::AwaitResult(json request_id) {
  waiters_.push_back(std::move(request_id));
  if (terminal()) AnswerWaiters();
}

void Task::AnswerWaiters() {
  for (json& id : std::exchange(waiters_, {})) {
    connection_->Send(MakeResult(id, LegacyResult()));
  }
}

void TaskStore::DropExpired() {
  const int64_t now = clock_.monotonic_ms();
  std::erase_if(tasks_, [now](const auto& entry) { return entry.second->expired(now); });
}

RpcOr<std::shared_ptr<Task>> TaskStore::Create(bool modern, std::optional<int64_t> requested_ttl_ms,
                                               std::string tool) {
  DropExpired();
  if (tasks_.size() >= kMaxTasks) {
    // Room for a new task: the oldest finished one goes first.
    auto oldest = tasks_.end();
    for (auto it = tasks_.begin(); it != tasks_.end(); ++it) {
      if (it->second->terminal() &&
          (oldest == tasks_.end() || it->second->created_ms() < oldest->second->created_ms())) {
        oldest = it;
      }
    }
    if (oldest == tasks_.end()) {
      return RpcError{rpc::kInvalidRequest,
                      std::to_string(kMaxTasks) +
                          " tasks are still working; wait for one to finish or cancel one"};
    }
    tasks_.erase(oldest);
  }
  auto id = RandomHex(16);
  if (!id) return RpcError{rpc::kInternalError, "cannot create a task id: getrandom failed"};
  const int64_t ttl = std::clamp(requested_ttl_ms.value_or(kDefaultTtlMs), kMinTtlMs, kMaxTtlMs);
  auto task = std::make_shared<Task>(connection_, clock_, *id, modern, ttl, std::move(tool));
  tasks_.emplace(*id, task);
  return task;
}

RpcOr<std::shared_ptr<Task>> TaskStore::Find(std::string_view id, bool modern) {
  DropExpired();
  auto it = tasks_.find(id);
  if (it == tasks_.end() || it->second->modern() != modern) {
    return InvalidParams("task not found: '" + std::string(id) +
                         "' (unknown, expired, or created under the other protocol era)");
  }
  return it->second;
}

}  // namespace mcpx::mcp
