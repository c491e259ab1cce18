// Arbitrary bytes through the transport's framing and the MCP server, with a recording sink.
// Beyond "no crash, no sanitizer report", it checks what every client relies on: each output is
// a serializable JSON-RPC 2.0 object on one line, and tool results keep their shape.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "mcp/jsonrpc.h"
#include "mcp/server.h"
#include "mcp/timers.h"
#include "mcp/tool_registry.h"
#include "mcp/transport.h"

namespace {

using mcpx::mcp::json;

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s\n", what);
    abort();
  }
}

class CheckingSink : public mcpx::mcp::MessageSink {
 public:
  void Send(const json& message) override {
    const std::string line = mcpx::mcp::Serialize(message);
    Check(line.find('\n') == std::string::npos, "a message spans lines");
    Check(json::accept(line), "output does not parse back");
    Check(message.is_object(), "output is not an object");
    Check(message.value("jsonrpc", "") == "2.0", "output lacks jsonrpc 2.0");
    const bool response = message.contains("result") || message.contains("error");
    Check(response != message.contains("method"), "neither response nor notification");
    if (response) {
      Check(message.contains("id"), "response without id");
      const json& id = message["id"];
      Check(id.is_null() || id.is_string() || id.is_number(), "bad id type in a response");
      if (message.contains("result")) Check(!id.is_null(), "result with id null");
      if (auto r = message.find("result");
          r != message.end() && message.contains("id") && r->contains("content")) {
        Check((*r)["content"].is_array(), "tool result without a content array");
      }
      // 2026-07-28 results: complete, or a task handle that names its task.
      if (auto r = message.find("result"); r != message.end() && r->contains("resultType")) {
        const json& type = (*r)["resultType"];
        Check(type == "complete" || type == "task", "unknown resultType");
        if (type == "task") Check((*r)["taskId"].is_string(), "task handle without taskId");
      }
    }
  }
};

// A tool driven by its arguments, to reach progress, logging, cancellation and bad results.
class PuppetTool : public mcpx::mcp::Tool {
 public:
  json Definition() const override {
    return json{{"name", "puppet"}, {"inputSchema", {{"type", "object"}}}};
  }
  void Call(mcpx::mcp::ToolCallPtr call) override {
    const json& a = call->arguments();
    if (auto p = a.find("progress"); p != a.end() && p->is_number()) {
      call->Progress(p->get<double>(), std::nullopt, "step");
      call->Progress(p->get<double>() - 1, 3.0, "");
    }
    if (auto l = a.find("log"); l != a.end() && l->is_string()) {
      call->Log(l->get<std::string>(), "message");
    }
    call->OnCancel([] {});
    if (a.contains("hold")) {
      held.push_back(call);
    } else if (auto r = a.find("result"); r != a.end()) {
      call->Finish(*r);  // anything at all: the server must sanitize it
    } else {
      call->Finish(mcpx::mcp::TextResult(a.dump(-1, ' ', false, json::error_handler_t::replace)));
    }
  }
  bool supports_tasks() const override { return true; }
  std::vector<mcpx::mcp::ToolCallPtr> held;
};

// Timers the fuzzer fires itself, every few lines, so calls become tasks mid-input.
class CrankedTimers : public mcpx::mcp::Timers {
 public:
  void After(std::chrono::milliseconds, std::function<void()> cb) override {
    pending.push_back(std::move(cb));
  }
  void Fire() {
    auto due = std::move(pending);
    pending.clear();
    for (auto& cb : due) cb();
  }
  std::vector<std::function<void()>> pending;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckingSink sink;
  mcpx::mcp::ToolRegistry registry;
  auto puppet = std::make_unique<PuppetTool>();
  PuppetTool* tool = puppet.get();
  registry.Add(std::move(puppet));
  mcpx::mcp::ServerOptions options;
  options.tools_page_size = 1;
  auto server = std::make_unique<mcpx::mcp::Server>(sink, registry, options);
  auto owned_timers = std::make_unique<CrankedTimers>();
  CrankedTimers* timers = owned_timers.get();
  server->SetTimers(std::move(owned_timers));

  // The first byte picks whether the session starts initialized, to reach the later methods.
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && (input[0] & 1) != 0) {
    server->HandleLine(
        R"({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25"}})");
  }
  // A small cap so oversized lines are reached; the input arrives in uneven pieces.
  size_t lines = 0;
  mcpx::mcp::LineFramer framer(
      512,
      [&](std::string_view line) {
        server->HandleLine(line);
        if (++lines % 2 == 0) timers->Fire();
      },
      [&] { server->HandleOversized(512); });
  size_t step = 1;
  while (!input.empty()) {
    const size_t n = std::min(input.size(), step);
    framer.Feed(input.substr(0, n));
    input.remove_prefix(n);
    step = step * 3 % 97 + 1;
  }
  framer.Finish();
  timers->Fire();

  // Late finishes, including of cancelled calls, then the server goes away with calls pending.
  for (size_t i = 0; i < tool->held.size(); i += 2)
    tool->held[i]->Finish(mcpx::mcp::TextResult("late"));
  server.reset();
  for (auto& call : tool->held) call->Finish(mcpx::mcp::TextResult("after the server"));
  return 0;
}
