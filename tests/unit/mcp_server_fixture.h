// The MCP server under test with fakes around it: a sink that keeps what would go on the wire,
// tools whose behaviour each test picks, resources, and timers cranked by hand.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mcp/jsonrpc.h"
#include "mcp/server.h"
#include "mcp/timers.h"
#include "mcp/tool_registry.h"

namespace mcpx::mcp::test_support {

class FakeSink : public MessageSink {
 public:
  void Send(const json& message) override {
    // What the transport would do: serializing must never throw.
    wire.push_back(Serialize(message));
    messages.push_back(message);
  }
  std::vector<json> Take() { return std::exchange(messages, {}); }
  std::vector<json> messages;
  std::vector<std::string> wire;
};

// A tool whose behaviour each test picks; keeps the calls it did not finish.
class FakeTool : public Tool {
 public:
  enum class Mode { kEcho, kHold, kThrow, kReturnArray, kNoContent, kDrop };
  FakeTool(std::string name, Mode mode, bool tasks = false)
      : name_(std::move(name)), mode_(mode), tasks_(tasks) {}
  bool supports_tasks() const override { return tasks_; }

  json Definition() const override {
    return json{{"name", name_},
                {"description", "test tool " + name_},
                {"inputSchema", {{"type", "object"}}}};
  }
  void Call(ToolCallPtr call) override {
    switch (mode_) {
      case Mode::kEcho:
        call->Finish(TextResult(call->arguments().dump()));
        break;
      case Mode::kHold:
        held.push_back(call);
        break;
      case Mode::kThrow:
        throw std::runtime_error("boom");
      case Mode::kReturnArray:
        call->Finish(json::array({1, 2}));
        break;
      case Mode::kNoContent:
        call->Finish(json{{"isError", false}});
        break;
      case Mode::kDrop:
        break;
    }
  }
  std::vector<ToolCallPtr> held;

 private:
  std::string name_;
  Mode mode_;
  bool tasks_;
};

// Registers fine (the registry reads its name once), then fails when tools/list asks again.
class ThrowingDefinitionTool : public Tool {
 public:
  json Definition() const override {
    if (asked_++ > 0) throw std::runtime_error("no definition today");
    return {{"name", "flaky"}};
  }
  void Call(ToolCallPtr call) override { call->Finish(TextResult("ok")); }

 private:
  mutable int asked_ = 0;
};

class FakeResources : public ResourceProvider {
 public:
  Result<json> List(const std::optional<std::string>& cursor) override {
    if (cursor) return InvalidArgument("bad cursor");
    return json{{"resources", json::array({{{"uri", "file:///workspace/a.txt"}, {"name", "a"}}})}};
  }
  Result<json> Read(const std::string& uri) override {
    if (uri == "file:///workspace/a.txt") {
      return json{{"contents", json::array({{{"uri", uri}, {"text", "hi"}}})}};
    }
    if (uri.find("..") != std::string::npos) return InvalidArgument("outside the workspace");
    return NotFound(uri);
  }
};

// Timers that fire only when a test says so.
class FakeTimers : public Timers {
 public:
  void After(std::chrono::milliseconds delay, std::function<void()> cb) override {
    pending.push_back({delay, std::move(cb)});
  }
  // Runs what is due now (callbacks may arm new timers, which wait for the next Fire()).
  size_t Fire() {
    auto due = std::exchange(pending, {});
    for (auto& [delay, cb] : due) cb();
    return due.size();
  }
  std::vector<std::pair<std::chrono::milliseconds, std::function<void()>>> pending;
};

class ServerTest : public ::testing::Test {
 protected:
  explicit ServerTest(size_t page_size = 0) {
    auto add = [&](const char* name, FakeTool::Mode mode, bool tasks = false) {
      auto t = std::make_unique<FakeTool>(name, mode, tasks);
      tools_.push_back(t.get());
      registry_.Add(std::move(t));
    };
    add("echo", FakeTool::Mode::kEcho);
    add("hold", FakeTool::Mode::kHold);
    add("throw", FakeTool::Mode::kThrow);
    add("array", FakeTool::Mode::kReturnArray);
    add("nocontent", FakeTool::Mode::kNoContent);
    add("drop", FakeTool::Mode::kDrop);
    add("long", FakeTool::Mode::kHold, /*tasks=*/true);
    add("quick", FakeTool::Mode::kEcho, /*tasks=*/true);
    ServerOptions options;
    options.tools_page_size = page_size;
    server_ = std::make_unique<Server>(sink_, registry_, options);
    auto timers = std::make_unique<FakeTimers>();
    timers_ = timers.get();
    server_->SetTimers(std::move(timers));
  }

  FakeTool& hold() { return *tools_[1]; }
  FakeTool& long_tool() { return *tools_[6]; }

  void Line(std::string_view line) { server_->HandleLine(line); }
  void Send(const json& j) { Line(j.dump()); }

  // Sends one message and returns everything it produced.
  std::vector<json> Exchange(const json& j) {
    Send(j);
    return sink_.Take();
  }
  std::vector<json> ExchangeLine(std::string_view line) {
    Line(line);
    return sink_.Take();
  }
  // Sends a request and returns its single response.
  json Request(json id, const std::string& method, json params = nullptr) {
    json msg{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (!params.is_null()) msg["params"] = params;
    auto out = Exchange(msg);
    EXPECT_EQ(out.size(), 1u) << msg.dump();
    return out.empty() ? json() : out[0];
  }
  json Notify(const std::string& method, json params = nullptr) {
    json msg{{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) msg["params"] = params;
    return msg;
  }

  json Initialize(const std::string& version = "2025-11-25") {
    json r = Request(0, "initialize",
                     {{"protocolVersion", version},
                      {"capabilities", json::object()},
                      {"clientInfo", {{"name", "test"}, {"version", "1"}}}});
    EXPECT_TRUE(Exchange(Notify("notifications/initialized")).empty());
    return r;
  }

  json CallParams(const std::string& tool, json args = json::object(), json meta = nullptr) {
    json p{{"name", tool}, {"arguments", args}};
    if (!meta.is_null()) p["_meta"] = meta;
    return p;
  }

  // The per-request _meta of a 2026-07-28 request; `tasks` declares the tasks extension.
  static json ModernMeta(bool tasks = false, json extra = json::object()) {
    json caps = json::object();
    if (tasks) caps["extensions"]["io.modelcontextprotocol/tasks"] = json::object();
    json m{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
           {"io.modelcontextprotocol/clientCapabilities", caps}};
    m.update(extra);
    return m;
  }
  // A 2026-07-28 request: `params` plus ModernMeta(tasks) in its _meta.
  json Modern(json id, const std::string& method, json params = json::object(),
              bool tasks = false) {
    json meta = ModernMeta(tasks);
    if (params.contains("_meta")) meta.update(params["_meta"]);
    params["_meta"] = meta;
    return Request(std::move(id), method, std::move(params));
  }

  static int Code(const json& response) { return response.at("error").at("code").get<int>(); }
  static std::string Message(const json& response) {
    return response.at("error").at("message").get<std::string>();
  }

  FakeSink sink_;
  ToolRegistry registry_;
  std::vector<FakeTool*> tools_;
  std::unique_ptr<Server> server_;
  FakeTimers* timers_ = nullptr;
};

}  // namespace mcpx::mcp::test_support
