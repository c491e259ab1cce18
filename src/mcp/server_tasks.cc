// Calls that run long: tasks in both eras (tasks.h) and keepalive progress for plain calls.
#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>

#include "mcp/server.h"
#include "mcp/tool_call.h"
#include "util/event_loop.h"

namespace mcpx::mcp {
namespace {

RpcOr<Server::TaskRequest> ParseTask(const json& params) {
  auto id = ParamReader(params).RequiredString("taskId");
  if (!id.ok()) return id.error();
  return Server::TaskRequest{std::move(id).value()};
}

}  // namespace

void Server::RegisterTaskMethods() {
  auto& d = dispatcher_;
  d.AddRequest<TaskRequest>("tasks/get", Gate::kAfterInitialize, Era::kBoth, ParseTask,
                            [this](TaskRequest p, const Request& request) -> Outcome {
                              auto task = FindTask(p, request);
                              if (!task.ok()) return task.error();
                              return request.meta.modern ? task.value()->ModernWire(true)
                                                         : task.value()->LegacyWire();
                            });
  d.AddRequest<TaskRequest>("tasks/result", Gate::kAfterInitialize, Era::kLegacyOnly, ParseTask,
                            [this](TaskRequest p, const Request& request) -> Outcome {
                              auto task = FindTask(p, request);
                              if (!task.ok()) return task.error();
                              task.value()->AwaitResult(request.id);
                              return Deferred{};
                            });
  d.AddRequest<TaskRequest>("tasks/cancel", Gate::kAfterInitialize, Era::kBoth, ParseTask,
                            [this](TaskRequest p, const Request& request) -> Outcome {
                              auto found = FindTask(p, request);
                              if (!found.ok()) return found.error();
                              Task& task = *found.value();
                              // 2026-07-28 acknowledges whatever the state; 2025-11-25 refuses a
                              // finished task.
                              if (!task.Cancel() && !task.modern()) {
                                return InvalidParams("task " + task.id() + " is already " +
                                                     std::string(TaskStatusName(task.status())) +
                                                     ": only a working task can be cancelled");
                              }
                              return task.modern() ? json::object() : task.LegacyWire();
                            });
  // This server never asks for input, so there is nothing to update: acknowledged, as the
  // extension asks for responses to keys that are not outstanding.
  d.AddRequest<TaskRequest>("tasks/update", Gate::kAnyTime, Era::kModernOnly, ParseTask,
                            [this](TaskRequest p, const Request& request) -> Outcome {
                              auto task = FindTask(p, request);
                              if (!task.ok()) return task.error();
                              return json::object();
                            });
}

RpcOr<std::shared_ptr<Task>> Server::FindTask(const TaskRequest& p, const Request& request) {
  if (request.meta.modern && !request.meta.tasks_extension()) {
    return MissingTasksExtension(request.method);
  }
  if (!request.meta.modern && !legacy_tasks()) {
    return RpcError{rpc::kMethodNotFound,
                    "method not found: " + request.method + " needs protocol " +
                        std::string(kLegacyTasksVersion) + " (this client negotiated " +
                        legacy_version_ + ")",
                    json{{"method", request.method}}};
  }
  return tasks_->Find(p.task_id, request.meta.modern);
}

Outcome Server::StartLegacyTask(Tool& tool, CallRequest p, CallContext context,
                                const Request& request) {
  std::optional<int64_t> ttl;
  if (auto t = p.task->find("ttl"); t != p.task->end() && t->is_number()) {
    ttl = static_cast<int64_t>(std::min(t->get<double>(), 1e15));
  }
  auto task = tasks_->Create(false, ttl, p.name);
  if (!task.ok()) return task.error();
  auto call = std::make_shared<ToolCallImpl>(connection_, request.id, p.name,
                                             std::move(p.arguments), std::move(context));
  call->BindTask(task.value());
  dispatcher_.Send(MakeResult(request.id, json{{"task", task.value()->LegacyWire()}}));
  RunTool(tool, call);
  return Deferred{};
}

void Server::PromoteLater(const std::shared_ptr<ToolCallImpl>& call, std::string tool) {
  std::weak_ptr<ToolCallImpl> weak = call;
  timers_->After(options_.task_after, [weak, tasks = tasks_, tool = std::move(tool)] {
    auto running = weak.lock();
    if (running == nullptr || running->finished() || running->cancelled()) return;
    auto task = tasks->Create(true, std::nullopt, tool);
    if (!task.ok()) {
      // Still answered, only not as a task.
      spdlog::warn("call {} to '{}' stays a plain call: {}", Serialize(running->id()), tool,
                   task.error().message);
      return;
    }
    running->PromoteToTask(std::move(task).value());
  });
}

void Server::ArmKeepalive() {
  if (keepalive_armed_ || timers_ == nullptr) return;
  keepalive_armed_ = true;
  std::weak_ptr<bool> alive = alive_;
  timers_->After(std::chrono::seconds(1), [this, alive] {
    if (alive.expired()) return;
    keepalive_armed_ = false;
    const int64_t now = EventLoop::NowMs();
    bool again = false;
    // Keepalive() only sends: it never finishes a call, so the table does not change under us.
    for (const auto& [key, weak] : connection_->in_flight()) {
      if (auto call = weak.lock()) again = call->Keepalive(now) || again;
    }
    if (again) ArmKeepalive();
  });
}

}  // namespace mcpx::mcp
