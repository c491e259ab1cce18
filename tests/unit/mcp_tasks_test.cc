// Tasks in both eras (the 2025-11-25 experimental tasks and the 2026-07-28 extension), the task
// store's bounds, and keepalive progress for plain calls.
#include "mcp/tasks.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "mcp/tool_call.h"
#include "mcp_server_fixture.h"
#include "util/event_loop.h"

namespace mcpx::mcp {
namespace {

using namespace test_support;

bool IsTaskId(const json& id) {
  return id.is_string() && std::regex_match(id.get<std::string>(), std::regex("[0-9a-f]{32}"));
}

bool IsTimestamp(const json& t) {
  return t.is_string() && std::regex_match(t.get<std::string>(),
                                           std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"));
}

class LegacyTasksTest : public ServerTest {
 protected:
  // Starts `long` as a 2025-11-25 task; returns its id.
  std::string StartTask(json task = json::object()) {
    json params = CallParams("long");
    params["task"] = task;
    json r = Request(1, "tools/call", params);
    EXPECT_TRUE(r.contains("result")) << r.dump();
    return r["result"]["task"]["taskId"];
  }
};

TEST_F(LegacyTasksTest, OnlyA20251125ClientIsOfferedTasks) {
  json init = Initialize("2025-11-25");
  EXPECT_EQ(
      init["result"]["capabilities"]["tasks"],
      json({{"cancel", json::object()}, {"requests", {{"tools", {{"call", json::object()}}}}}}));
  // No list: stdio has no auth context to scope one to.
  EXPECT_FALSE(init["result"]["capabilities"]["tasks"].contains("list"));
  const json list = Request(1, "tools/list");
  for (const auto& t : list["result"]["tools"]) {
    const bool tasks = t["name"] == "long" || t["name"] == "quick";
    EXPECT_EQ(t.contains("execution"), tasks) << t.dump();
    if (tasks) {
      EXPECT_EQ(t["execution"], json({{"taskSupport", "optional"}}));
    }
  }
  EXPECT_EQ(Code(Request(2, "tasks/list")), -32601);
}

TEST(LegacyTasksOlderRevisionTest, OlderRevisionsNeitherSeeNorUseTasks) {
  FakeSink sink;
  ToolRegistry registry;
  registry.Add(std::make_unique<FakeTool>("quick", FakeTool::Mode::kEcho, true));
  Server server(sink, registry);
  server.HandleLine(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":)"
                    R"({"protocolVersion":"2025-06-18","capabilities":{}}})");
  EXPECT_FALSE(sink.Take()[0]["result"]["capabilities"].contains("tasks"));
  server.HandleLine(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_FALSE(sink.Take()[0]["result"]["tools"][0].contains("execution"));
  // params.task is not part of 2025-06-18: the call is a plain one.
  server.HandleLine(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":)"
                    R"({"name":"quick","arguments":{},"task":{}}})");
  auto out = sink.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0]["result"].contains("content"));
}

TEST_F(LegacyTasksTest, ATaskRunsToCompletion) {
  Initialize();
  json params = CallParams("long", json::object(), {{"progressToken", "p"}});
  params["task"] = {{"ttl", 120000}};
  json r = Request(1, "tools/call", params);
  const json& task = r["result"]["task"];
  ASSERT_TRUE(IsTaskId(task["taskId"])) << r.dump();
  EXPECT_EQ(task["status"], "working");
  EXPECT_EQ(task["ttl"], 120000);
  EXPECT_EQ(task["pollInterval"], 1000);
  EXPECT_TRUE(IsTimestamp(task["createdAt"]));
  EXPECT_TRUE(IsTimestamp(task["lastUpdatedAt"]));
  const std::string id = task["taskId"];

  // Progress: the progress notification as for a plain call, and a status notification that
  // carries its text.
  auto call = long_tool().held.at(0);
  call->Progress(1, std::nullopt, "1 s, 2 lines of output\n");
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["method"], "notifications/tasks/status");
  EXPECT_EQ(out[0]["params"]["taskId"], id);
  EXPECT_EQ(out[0]["params"]["statusMessage"], "1 s, 2 lines of output");
  EXPECT_EQ(out[1]["method"], "notifications/progress");
  json got = Request(2, "tasks/get", {{"taskId", id}});
  EXPECT_EQ(got["result"]["status"], "working");
  EXPECT_EQ(got["result"]["statusMessage"], "1 s, 2 lines of output");

  // tasks/result waits for the end.
  EXPECT_TRUE(
      Exchange(
          {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tasks/result"}, {"params", {{"taskId", id}}}})
          .empty());
  call->Finish(TextResult("42"));
  out = sink_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["method"], "notifications/tasks/status");
  EXPECT_EQ(out[0]["params"]["status"], "completed");
  EXPECT_EQ(out[1]["id"], 3);
  EXPECT_EQ(out[1]["result"]["content"][0]["text"], "42");
  EXPECT_EQ(out[1]["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], id);
  // Asked again later: answered at once.
  EXPECT_EQ(Request(4, "tasks/result", {{"taskId", id}})["result"]["content"][0]["text"], "42");
  EXPECT_EQ(Request(5, "tasks/get", {{"taskId", id}})["result"]["status"], "completed");
}

TEST_F(LegacyTasksTest, StatusNotificationsAreRateLimitedButTransitionsAlwaysGo) {
  Initialize();
  StartTask();
  auto call = long_tool().held.at(0);
  call->Progress(1, std::nullopt, "first");
  call->Progress(2, std::nullopt, "second, too soon");
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["params"]["statusMessage"], "first");
  call->Finish(TextResult("done"));
  out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["params"]["status"], "completed");
}

TEST_F(LegacyTasksTest, CancelInterruptsTheCallAndKeepsTheAnswerShape) {
  Initialize();
  const std::string id = StartTask();
  auto call = long_tool().held.at(0);
  int interrupts = 0;
  call->OnCancel([&] { ++interrupts; });
  EXPECT_TRUE(
      Exchange(
          {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tasks/result"}, {"params", {{"taskId", id}}}})
          .empty());
  Send({{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tasks/cancel"}, {"params", {{"taskId", id}}}});
  auto out = sink_.Take();
  EXPECT_EQ(interrupts, 1);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["method"], "notifications/tasks/status");
  EXPECT_EQ(out[0]["params"]["status"], "cancelled");
  EXPECT_EQ(out[1]["id"], 2);  // the waiting tasks/result
  EXPECT_TRUE(out[1]["result"]["isError"].get<bool>());
  EXPECT_NE(out[1]["result"]["content"][0]["text"].get<std::string>().find("keeps its state"),
            std::string::npos);
  EXPECT_EQ(out[2]["id"], 3);
  EXPECT_EQ(out[2]["result"]["status"], "cancelled");
  // The interrupted cell's own result, when it comes, changes nothing.
  call->Finish(TextResult("KeyboardInterrupt"));
  EXPECT_TRUE(sink_.Take().empty());
  EXPECT_EQ(Request(4, "tasks/get", {{"taskId", id}})["result"]["status"], "cancelled");
  json again = Request(5, "tasks/cancel", {{"taskId", id}});
  EXPECT_EQ(Code(again), -32602);
  EXPECT_NE(Message(again).find("already cancelled"), std::string::npos);
}

TEST_F(LegacyTasksTest, NotificationsCancelledNoLongerReachATask) {
  Initialize();
  const std::string id = StartTask();
  auto call = long_tool().held.at(0);
  EXPECT_TRUE(Exchange(Notify("notifications/cancelled", {{"requestId", 1}})).empty());
  EXPECT_FALSE(call->cancelled());
  EXPECT_EQ(Request(2, "tasks/get", {{"taskId", id}})["result"]["status"], "working");
}

TEST_F(LegacyTasksTest, ErrorsNameTheProblem) {
  Initialize();
  json params = CallParams("echo");
  params["task"] = json::object();
  json r = Request(1, "tools/call", params);
  EXPECT_EQ(Code(r), -32601);
  EXPECT_NE(Message(r).find("does not run as a task"), std::string::npos);
  params = CallParams("long");
  params["task"] = {{"ttl", "soon"}};
  EXPECT_EQ(Message(Request(2, "tools/call", params)),
            "params.task.ttl must be a number of milliseconds, got string");
  params["task"] = 5;
  EXPECT_EQ(Code(Request(3, "tools/call", params)), -32602);
  json unknown = Request(4, "tasks/get", {{"taskId", "feedface"}});
  EXPECT_EQ(Code(unknown), -32602);
  EXPECT_NE(Message(unknown).find("task not found: 'feedface'"), std::string::npos);
  EXPECT_EQ(Message(Request(5, "tasks/get", json::object())), "missing params.taskId");
  EXPECT_EQ(Code(Request(6, "tasks/update", {{"taskId", "x"}})), -32602);  // modern only
}

TEST_F(LegacyTasksTest, TtlIsClamped) {
  Initialize();
  json params = CallParams("quick");
  params["task"] = {{"ttl", 1}};
  // The handle, then the status notification of a call that finished at once.
  auto out =
      Exchange({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", params}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["result"]["task"]["ttl"], TaskStore::kMinTtlMs);
  EXPECT_EQ(out[1]["params"]["status"], "completed");
  params["task"] = {{"ttl", 1e300}};
  out = Exchange({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"}, {"params", params}});
  EXPECT_EQ(out.at(0)["result"]["task"]["ttl"], TaskStore::kMaxTtlMs);
}

class ModernTasksTest : public ServerTest {
 protected:
  // Calls `long` as a client with the extension; returns what came back once the timer fired.
  json StartAndPromote() {
    Send({{"jsonrpc", "2.0"},
          {"id", "c1"},
          {"method", "tools/call"},
          {"params",
           {{"name", "long"}, {"arguments", json::object()}, {"_meta", ModernMeta(true)}}}});
    EXPECT_TRUE(sink_.Take().empty());
    timers_->Fire();
    auto out = sink_.Take();
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? json() : out[0];
  }
};

TEST_F(ModernTasksTest, ALongCallBecomesATaskThatCarriesItsResult) {
  json handle = StartAndPromote();
  EXPECT_EQ(handle["id"], "c1");
  const json& t = handle["result"];
  EXPECT_EQ(t["resultType"], "task");
  ASSERT_TRUE(IsTaskId(t["taskId"])) << handle.dump();
  EXPECT_EQ(t["status"], "working");
  EXPECT_EQ(t["ttlMs"], TaskStore::kDefaultTtlMs);
  EXPECT_EQ(t["pollIntervalMs"], 1000);
  EXPECT_TRUE(IsTimestamp(t["createdAt"]));
  EXPECT_TRUE(t["_meta"].contains("io.modelcontextprotocol/serverInfo"));
  const std::string id = t["taskId"];

  auto call = long_tool().held.at(0);
  call->Progress(3, std::nullopt, "3 s, no output yet");
  EXPECT_TRUE(sink_.Take().empty());  // modern clients poll
  json got = Modern(2, "tasks/get", {{"taskId", id}}, true);
  EXPECT_EQ(got["result"]["resultType"], "complete");
  EXPECT_EQ(got["result"]["status"], "working");
  EXPECT_EQ(got["result"]["statusMessage"], "3 s, no output yet");
  EXPECT_FALSE(got["result"].contains("result"));

  call->Finish(TextResult("done"));
  EXPECT_TRUE(sink_.Take().empty());  // the request was answered with the handle
  got = Modern(3, "tasks/get", {{"taskId", id}}, true);
  EXPECT_EQ(got["result"]["status"], "completed");
  EXPECT_EQ(got["result"]["result"]["content"][0]["text"], "done");
  EXPECT_EQ(got["result"]["result"]["resultType"], "complete");  // as the call would have been
  EXPECT_FALSE(got["result"]["result"].contains("_meta"));       // serverInfo is on tasks/get once
  EXPECT_FALSE(got["result"].contains("statusMessage"));
}

TEST_F(ModernTasksTest, QuickCallsStayPlain) {
  json r = Modern(1, "tools/call", CallParams("quick"), true);
  EXPECT_EQ(r["result"]["resultType"], "complete");
  timers_->Fire();
  EXPECT_TRUE(sink_.Take().empty());
  // A long call that ends before the timer is answered normally too.
  Send(
      {{"jsonrpc", "2.0"},
       {"id", 2},
       {"method", "tools/call"},
       {"params", {{"name", "long"}, {"arguments", json::object()}, {"_meta", ModernMeta(true)}}}});
  long_tool().held.at(0)->Finish(TextResult("in time"));
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["result"]["resultType"], "complete");
  timers_->Fire();
  EXPECT_TRUE(sink_.Take().empty());
}

TEST_F(ModernTasksTest, WithoutTheExtensionOrTaskSupportACallNeverBecomesATask) {
  Send({{"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "tools/call"},
        {"params", {{"name", "long"}, {"arguments", json::object()}, {"_meta", ModernMeta()}}}});
  Send(
      {{"jsonrpc", "2.0"},
       {"id", 2},
       {"method", "tools/call"},
       {"params", {{"name", "hold"}, {"arguments", json::object()}, {"_meta", ModernMeta(true)}}}});
  EXPECT_EQ(timers_->Fire(), 0u);
  long_tool().held.at(0)->Finish(TextResult("plain"));
  hold().held.at(0)->Finish(TextResult("plain too"));
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["result"]["resultType"], "complete");
  EXPECT_EQ(out[1]["result"]["resultType"], "complete");
}

TEST_F(ModernTasksTest, CancelIsAcknowledgedAndInterruptsTheCall) {
  const std::string id = StartAndPromote()["result"]["taskId"];
  auto call = long_tool().held.at(0);
  int interrupts = 0;
  call->OnCancel([&] { ++interrupts; });
  json ack = Modern(2, "tasks/cancel", {{"taskId", id}}, true);
  EXPECT_EQ(ack["result"]["resultType"], "complete");
  EXPECT_EQ(interrupts, 1);
  call->Finish(TextResult("KeyboardInterrupt"));
  EXPECT_TRUE(sink_.Take().empty());
  json got = Modern(3, "tasks/get", {{"taskId", id}}, true);
  EXPECT_EQ(got["result"]["status"], "cancelled");
  EXPECT_FALSE(got["result"].contains("result"));
  // Cancelling a finished task is acknowledged too, and changes nothing.
  EXPECT_TRUE(Modern(4, "tasks/cancel", {{"taskId", id}}, true).contains("result"));
  EXPECT_EQ(interrupts, 1);
  EXPECT_TRUE(Modern(5, "tasks/update", {{"taskId", id}}, true).contains("result"));
}

TEST_F(ModernTasksTest, TaskMethodsNeedTheExtensionAndTheirOwnEra) {
  const std::string id = StartAndPromote()["result"]["taskId"];
  for (const char* method : {"tasks/get", "tasks/cancel", "tasks/update"}) {
    json r = Modern(1, method, {{"taskId", id}}, false);
    EXPECT_EQ(Code(r), -32021) << method;
    EXPECT_TRUE(r["error"]["data"]["requiredCapabilities"]["extensions"].contains(
        "io.modelcontextprotocol/tasks"));
  }
  // A legacy client cannot see a modern task.
  Initialize();
  EXPECT_EQ(Code(Request(2, "tasks/get", {{"taskId", id}})), -32602);
  EXPECT_EQ(Code(Modern(3, "tasks/get", {{"taskId", "0123"}}, true)), -32602);
}

TEST(TaskStoreTest, BoundedByCountAndTtl) {
  FakeSink sink;
  auto connection = std::make_shared<Connection>(sink);
  int64_t now = 1'000'000;
  TaskClock clock{[&] { return now; }, [] { return std::chrono::system_clock::now(); }};
  TaskStore store(connection, clock);
  std::set<std::string> ids;
  std::vector<std::shared_ptr<Task>> tasks;
  for (size_t i = 0; i < TaskStore::kMaxTasks; ++i) {
    auto t = store.Create(true, std::nullopt, "long");
    ASSERT_TRUE(t.ok());
    ids.insert(t.value()->id());
    tasks.push_back(t.value());
    ++now;
  }
  EXPECT_EQ(ids.size(), TaskStore::kMaxTasks);  // all distinct
  // Every slot is working: no room, and a working task is never dropped.
  auto full = store.Create(true, std::nullopt, "long");
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().message.find("64 tasks are still working"), std::string::npos);
  // A finished task makes room: the oldest finished one goes.
  tasks[5]->Complete(TextResult("x"));
  tasks[3]->Complete(TextResult("y"));
  ASSERT_TRUE(store.Create(true, std::nullopt, "long").ok());
  EXPECT_FALSE(store.Find(tasks[3]->id(), true).ok());
  EXPECT_TRUE(store.Find(tasks[5]->id(), true).ok());
  // TTL: a finished task goes once its TTL has passed since creation; a working one stays.
  now += TaskStore::kDefaultTtlMs;
  EXPECT_FALSE(store.Find(tasks[5]->id(), true).ok());
  EXPECT_TRUE(store.Find(tasks[6]->id(), true).ok());
  EXPECT_EQ(store.size(), TaskStore::kMaxTasks - 1);
}

TEST(TaskStoreTest, TimestampsAreUtcWithMilliseconds) {
  FakeSink sink;
  const auto wall = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  TaskStore store(std::make_shared<Connection>(sink),
                  TaskClock{[] { return int64_t{0}; }, [wall] { return wall; }});
  auto task = store.Create(true, std::nullopt, "long").value();
  EXPECT_EQ(task->ModernWire(false)["createdAt"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(task->LegacyWire()["lastUpdatedAt"], "2023-11-14T22:13:20.123Z");
}

TEST(KeepaliveTest, SilentCallsWithATokenGetProgressEveryFewSeconds) {
  FakeSink sink;
  auto connection = std::make_shared<Connection>(sink);
  CallContext context;
  context.progress_token = "tok";
  auto call = std::make_shared<ToolCallImpl>(connection, json(1), "long", json::object(),
                                             std::move(context));
  const int64_t start = EventLoop::NowMs();
  EXPECT_TRUE(call->Keepalive(start + ToolCallImpl::kKeepaliveMs - 1000));
  EXPECT_TRUE(sink.Take().empty());
  EXPECT_TRUE(call->Keepalive(start + 6000));
  auto out = sink.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["method"], "notifications/progress");
  EXPECT_EQ(out[0]["params"]["progressToken"], "tok");
  EXPECT_DOUBLE_EQ(out[0]["params"]["progress"].get<double>(), 0.001);
  EXPECT_NE(out[0]["params"]["message"].get<std::string>().find("still working"),
            std::string::npos);
  // Soon after: nothing. Much later: more, still moving forward past the tool's own progress.
  EXPECT_TRUE(call->Keepalive(start + 7000));
  EXPECT_TRUE(sink.Take().empty());
  call->Progress(4, std::nullopt, "4 s");
  sink.Take();
  EXPECT_TRUE(call->Keepalive(EventLoop::NowMs() + 20000));
  out = sink.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_DOUBLE_EQ(out[0]["params"]["progress"].get<double>(), 4.001);
  call->Finish(TextResult("done"));
  sink.Take();
  EXPECT_FALSE(call->Keepalive(EventLoop::NowMs() + 60000));
  EXPECT_TRUE(sink.Take().empty());
}

TEST(KeepaliveTest, NoTokenNoKeepalive) {
  FakeSink sink;
  auto call = std::make_shared<ToolCallImpl>(std::make_shared<Connection>(sink), json(1), "long",
                                             json::object(), CallContext{});
  EXPECT_FALSE(call->Keepalive(EventLoop::NowMs() + 60000));
  EXPECT_TRUE(sink.Take().empty());
  call->Finish(TextResult("done"));
}

TEST_F(ServerTest, KeepaliveTimerRunsOnlyWhileACallWithATokenRuns) {
  Initialize();
  Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", CallParams("hold")}});
  EXPECT_TRUE(timers_->pending.empty());  // no token: no keepalive
  Send({{"jsonrpc", "2.0"},
        {"id", 2},
        {"method", "tools/call"},
        {"params", CallParams("hold", json::object(), {{"progressToken", 7}})}});
  ASSERT_EQ(timers_->pending.size(), 1u);
  EXPECT_EQ(timers_->pending[0].first, std::chrono::seconds(1));
  EXPECT_EQ(timers_->Fire(), 1u);
  EXPECT_EQ(timers_->pending.size(), 1u);  // re-armed: the call still runs
  hold().held.at(1)->Finish(TextResult("done"));
  timers_->Fire();
  EXPECT_TRUE(timers_->pending.empty());
  hold().held.at(0)->Finish(TextResult("done"));
}

}  // namespace
}  // namespace mcpx::mcp
