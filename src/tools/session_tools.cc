#include "tools/session_tools.h"

#include <string>
#include <utility>

#include "mcp/tool.h"
#include "tools/annotations.h"
#include "tools/args.h"
#include "tools/execute_result.h"

namespace mcpx::tools {
namespace {

using json = nlohmann::json;

using mcp::ErrorResult;
using mcp::StructuredResult;
using mcp::Tool;
using mcp::ToolCallPtr;
using session::SessionManager;

json SessionsJson(const session::SessionsReport& report) {
  json list = json::array();
  for (const auto& s : report.sessions) {
    json one = {{"session", s.name},
                {"state", s.state},
                {"age_seconds", s.age_seconds},
                {"idle_seconds", s.idle_seconds},
                {"execution_count", s.execution_count},
                {"queued", s.queued},
                {"kernel_restarts", s.kernel_restarts}};
    // Known only with a cgroup: left out, not null (outputSchema has no null unions).
    if (s.memory_bytes) one["memory_bytes"] = *s.memory_bytes;
    if (s.peak_memory_bytes) one["peak_memory_bytes"] = *s.peak_memory_bytes;
    if (s.cpu_ms) one["cpu_ms"] = *s.cpu_ms;
    list.push_back(std::move(one));
  }
  return {{"sessions", std::move(list)},
          {"max_sessions", report.max_sessions},
          {"warm_kernels", report.warm_kernels},
          {"memory_limit_bytes", report.memory_limit_bytes}};
}

class ExecutePythonTool : public Tool {
 public:
  explicit ExecutePythonTool(std::shared_ptr<SessionManager> m) : m_(std::move(m)) {}

  json Definition() const override {
    const auto& limits = m_->settings();
    return {
        {"name", "execute_python"},
        {"title", "Run Python"},
        {"description",
         "Runs Python 3 code in a persistent, sandboxed session (like a notebook kernel): "
         "variables, imports and functions survive between calls of the same session. The value "
         "of the last expression is returned; matplotlib figures left open (or shown with "
         "plt.show() / display()) come back as PNG images. numpy, pandas and matplotlib are "
         "available. Files live in /workspace (the working directory; use read_file/write_file "
         "for them). There is no network and no interactive input(). Default timeout " +
             std::to_string(limits.timeout_default_s) + " s (max " +
             std::to_string(limits.timeout_max_s) + " s); memory limit " +
             std::to_string(m_->sandbox_limits().memory_bytes >> 20) + " MiB per session."},
        {"inputSchema",
         {{"type", "object"},
          {"properties",
           {{"code", {{"type", "string"}, {"description", "Python source to run."}}},
            {"session",
             {{"type", "string"},
              {"description",
               "Session name (letters, digits, '_', '-', '.'); each session has its own "
               "interpreter and variables."},
              {"default", "default"},
              {"pattern", "^[A-Za-z0-9_.-]{1,64}$"}}},
            {"timeout_seconds",
             {{"type", "number"},
              {"description", "Wall-clock limit for this call; capped by the policy."},
              {"exclusiveMinimum", 0}}}}},
          {"required", {"code"}},
          {"additionalProperties", false}}},
        {"outputSchema", ExecuteOutputSchema()},
        {"annotations", Annotations("Run Python", {.destructive = true, .open_world = true})}};
  }

  bool supports_tasks() const override { return true; }

  void Call(ToolCallPtr call) override {
    auto args = Args::Parse(call->arguments(), {"code", "session", "timeout_seconds"});
    if (!args.ok()) return call->Finish(ErrorResult(args.status().message()));
    auto code = args->RequiredString("code");
    if (!code.ok()) return call->Finish(ErrorResult(code.status().message()));
    auto session = args->OptionalString("session");
    if (!session.ok()) return call->Finish(ErrorResult(session.status().message()));
    auto timeout = args->OptionalNumber("timeout_seconds");
    if (!timeout.ok()) return call->Finish(ErrorResult(timeout.status().message()));
    session::ExecuteCallbacks cb;
    cb.done = [call](Result<session::ExecOutcome> outcome) {
      call->Finish(outcome.ok() ? ExecuteResult(*outcome)
                                : ErrorResult(outcome.status().message()));
    };
    if (call->wants_progress()) {
      cb.progress = [call](double progress, double total, std::string message) {
        call->Progress(progress, total, std::move(message));
      };
    }
    const session::ExecutionRef ref = m_->Execute(
        {session->value_or("default"), std::move(code).value(), *timeout}, std::move(cb));
    if (ref.id != 0) {
      call->OnCancel([m = m_, ref] { m->Cancel(ref); });
    }
  }

 private:
  std::shared_ptr<SessionManager> m_;
};

class ListSessionsTool : public Tool {
 public:
  explicit ListSessionsTool(std::shared_ptr<SessionManager> m) : m_(std::move(m)) {}

  json Definition() const override {
    return {
        {"name", "list_sessions"},
        {"title", "List Python sessions"},
        {"description",
         "Lists the open Python sessions with their state (starting, idle, busy, stopped), age, "
         "idle time, memory use and execution count."},
        {"inputSchema",
         {{"type", "object"}, {"properties", json::object()}, {"additionalProperties", false}}},
        {"outputSchema",
         {{"type", "object"},
          {"properties",
           {{"sessions",
             {{"type", "array"},
              {"items",
               {{"type", "object"},
                {"properties",
                 {{"session", {{"type", "string"}}},
                  {"state", {{"type", "string"}}},
                  {"age_seconds", {{"type", "number"}}},
                  {"idle_seconds", {{"type", "number"}}},
                  {"execution_count", {{"type", "integer"}}},
                  {"queued", {{"type", "integer"}}},
                  {"memory_bytes", {{"type", "integer"}}},
                  {"peak_memory_bytes", {{"type", "integer"}}},
                  {"cpu_ms", {{"type", "number"}}},
                  {"kernel_restarts", {{"type", "integer"}}}}},
                {"required", {"session", "state", "age_seconds", "execution_count"}}}}}},
            {"max_sessions", {{"type", "integer"}}},
            {"warm_kernels", {{"type", "integer"}}},
            {"memory_limit_bytes", {{"type", "integer"}}}}},
          {"required", {"sessions", "max_sessions"}}}},
        {"annotations", Annotations("List Python sessions", {.read_only = true})}};
  }

  void Call(ToolCallPtr call) override {
    auto args = Args::Parse(call->arguments(), {});
    if (!args.ok()) return call->Finish(ErrorResult(args.status().message()));
    json list = SessionsJson(m_->ListSessions());
    std::string text;
    for (const auto& s : list["sessions"]) {
      text += s["session"].get<std::string>() + ": " + s["state"].get<std::string>() + ", " +
              std::to_string(s["execution_count"].get<uint64_t>()) + " executions";
      if (s.contains("memory_bytes")) {
        text += ", " + std::to_string(s["memory_bytes"].get<uint64_t>() >> 20) + " MiB";
      }
      text += "\n";
    }
    if (text.empty()) text = "no sessions yet (execute_python starts one)\n";
    call->Finish(StructuredResult(std::move(list), std::move(text)));
  }

 private:
  std::shared_ptr<SessionManager> m_;
};

class ResetSessionTool : public Tool {
 public:
  explicit ResetSessionTool(std::shared_ptr<SessionManager> m) : m_(std::move(m)) {}

  json Definition() const override {
    return {
        {"name", "reset_session"},
        {"title", "Reset a Python session"},
        {"description",
         "Stops the session's Python interpreter and forgets its variables; the next "
         "execute_python call in that session starts fresh. Workspace files are kept."},
        {"inputSchema",
         {{"type", "object"},
          {"properties",
           {{"session",
             {{"type", "string"}, {"description", "Session to reset."}, {"default", "default"}}}}},
          {"additionalProperties", false}}},
        {"outputSchema",
         {{"type", "object"},
          {"properties", {{"session", {{"type", "string"}}}, {"existed", {{"type", "boolean"}}}}},
          {"required", {"session", "existed"}}}},
        {"annotations",
         Annotations("Reset a Python session", {.destructive = true, .idempotent = true})}};
  }

  void Call(ToolCallPtr call) override {
    auto args = Args::Parse(call->arguments(), {"session"});
    if (!args.ok()) return call->Finish(ErrorResult(args.status().message()));
    auto session = args->OptionalString("session");
    if (!session.ok()) return call->Finish(ErrorResult(session.status().message()));
    const std::string name = session->value_or("default");
    const bool existed = m_->Reset(name);
    call->Finish(StructuredResult({{"session", name}, {"existed", existed}},
                                  existed
                                      ? "session '" + name + "' was reset"
                                      : "session '" + name + "' did not exist; nothing to reset"));
  }

 private:
  std::shared_ptr<SessionManager> m_;
};

}  // namespace

void AddSessionTools(mcp::ToolRegistry& registry, std::shared_ptr<SessionManager> manager) {
  registry.Add(std::make_unique<ExecutePythonTool>(manager));
  registry.Add(std::make_unique<ListSessionsTool>(manager));
  registry.Add(std::make_unique<ResetSessionTool>(std::move(manager)));
}

}  // namespace mcpx::tools
