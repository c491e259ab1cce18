// Tasks: tools/call requests that run on after their request was answered with a task handle,
// and are then polled by id. Two wire formats share one state machine:
//   - legacy: the 2025-11-25 experimental tasks (the client asks with params.task; tasks/get,
//     tasks/result blocks until the end, tasks/cancel, notifications/tasks/status);
//   - modern: the 2026-07-28 extension io.modelcontextprotocol/tasks (the server decides;
//     tasks/get carries the result, tasks/update, tasks/cancel acknowledges).
// A task belongs to the era that created it and is invisible to the other one.
//
// State lives in memory only and goes with the server. Ids are 128 random bits, so a task can
// be read only by whoever was handed its id (stdio has no auth context to bind tasks to, which
// is also why there is no tasks/list). The store is bounded: at most kMaxTasks tasks, and a
// finished task is dropped once its TTL has passed since creation. A working task is never
// dropped: its call is bounded by the policy's timeout anyway.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mcp/connection.h"
#include "mcp/jsonrpc.h"

namespace mcpx::mcp {

// A tool's failure is a result (isError), so a task ends completed or cancelled, never "failed".
enum class TaskStatus { kWorking, kCompleted, kCancelled };
std::string_view TaskStatusName(TaskStatus status);

struct TaskClock {
  std::function<int64_t()> monotonic_ms;                        // TTLs and rate limits
  std::function<std::chrono::system_clock::time_point()> wall;  // createdAt, lastUpdatedAt
  static TaskClock Real();
};

class Task {
 public:
  static constexpr int64_t kPollIntervalMs = 1000;
  // Legacy status notifications while working, at most this often (terminal ones always go).
  static constexpr int64_t kStatusEveryMs = 2000;

  Task(std::shared_ptr<Connection> connection, TaskClock clock, std::string id, bool modern,
       int64_t ttl_ms, std::string tool);
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  const std::string& id() const { return id_; }
  bool modern() const { return modern_; }
  TaskStatus status() const { return status_; }
  bool terminal() const { return status_ != TaskStatus::kWorking; }
  bool expired(int64_t now_ms) const { return terminal() && now_ms >= created_ms_ + ttl_ms_; }
  int64_t created_ms() const { return created_ms_; }

  // The tool's CallToolResult: working -> completed. A cancelled task stays cancelled.
  void Complete(json call_tool_result);
  // The latest progress text, shown as statusMessage while working.
  void SetMessage(std::string message);
  // What Cancel() runs to stop the call (the tool's interrupt).
  void OnCancel(std::function<void()> interrupt) { interrupt_ = std::move(interrupt); }
  // working -> cancelled, then interrupts the call. False when already terminal.
  bool Cancel();

  // 2025-11-25 Task: taskId, status, statusMessage?, createdAt, lastUpdatedAt, ttl, pollInterval.
  json LegacyWire() const { return Wire(false); }
  // 2026-07-28 Task; `detailed` adds the result of a completed one, as tasks/get wants.
  json ModernWire(bool detailed) const;
  // Legacy tasks/result: answers `request_id` now when terminal, else when the task ends.
  void AwaitResult(json request_id);

 private:
  json Wire(bool modern) const;
  void Transition(TaskStatus to);
  // notifications/tasks/status now (2025-11-25 tasks only).
  void SendLegacyStatus(int64_t now_ms);
  void AnswerWaiters();
  json LegacyResult() const;

  std::shared_ptr<Connection> connection_;
  TaskClock clock_;
  std::string id_;
  bool modern_;
  int64_t ttl_ms_;
  std::string tool_;
  TaskStatus status_ = TaskStatus::kWorking;
  std::string message_;
  std::chrono::system_clock::time_point created_, updated_;
  int64_t created_ms_;
  int64_t last_status_ms_ = 0;
  json result_ = nullptr;  // CallToolResult when completed
  std::function<void()> interrupt_;
  std::vector<json> waiters_;  // legacy tasks/result requests still to answer
};

class TaskStore {
 public:
  static constexpr size_t kMaxTasks = 64;
  static constexpr int64_t kDefaultTtlMs = 60 * 60 * 1000;
  static constexpr int64_t kMinTtlMs = 60 * 1000;
  static constexpr int64_t kMaxTtlMs = 24 * 60 * 60 * 1000;

  explicit TaskStore(std::shared_ptr<Connection> connection, TaskClock clock = TaskClock::Real())
      : connection_(std::move(connection)), clock_(std::move(clock)) {}

  // A new working task. `requested_ttl_ms` (legacy params.task.ttl) is clamped to
  // [kMinTtlMs, kMaxTtlMs]. Fails when kMaxTasks tasks are still working.
  RpcOr<std::shared_ptr<Task>> Create(bool modern, std::optional<int64_t> requested_ttl_ms,
                                      std::string tool);
  // The task with this id in this era, or -32602 naming it.
  RpcOr<std::shared_ptr<Task>> Find(std::string_view id, bool modern);
  size_t size() const { return tasks_.size(); }

 private:
  void DropExpired();

  std::shared_ptr<Connection> connection_;
  TaskClock clock_;
  std::map<std::string, std::shared_ptr<Task>, std::less<>> tasks_;
};

}  // namespace mcpx::mcp
