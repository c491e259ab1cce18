#include "mcp/dispatcher.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mcp/jsonrpc.h"
#include "mcp_server_fixture.h"

namespace mcpx::mcp {
namespace {

using namespace test_support;

TEST_F(ServerTest, UnknownMethodIsMethodNotFoundEvenBeforeInitialize) {
  json r = Request(0, "completion/complete");
  EXPECT_EQ(r["id"], 0);
  EXPECT_EQ(Code(r), -32601);
  Initialize();
  EXPECT_EQ(Code(Request(1, "completion/complete")), -32601);
}

TEST_F(ServerTest, RequestsBeforeInitializeAreRefusedButPingWorks) {
  json r = Request(7, "tools/list");
  EXPECT_EQ(Code(r), rpc::kNotInitialized);
  EXPECT_EQ(Message(r),
            "server not initialized: send initialize first, or use protocol 2026-07-28 with "
            "per-request _meta");
  EXPECT_EQ(Request(8, "ping")["result"], json::object());
  Initialize();
  EXPECT_TRUE(Request(9, "tools/list").contains("result"));
}

TEST_F(ServerTest, IdsAreEchoedExactly) {
  Initialize();
  for (json id : {json(0), json(-1), json(-9007199254740991LL), json("0"), json(""),
                  json("req-\xc3\xa9"), json(1.5), json(18446744073709551615ULL)}) {
    json r = Request(id, "ping");
    EXPECT_EQ(r["id"], id) << id.dump();
    EXPECT_EQ(Serialize(r["id"]), Serialize(id));
    EXPECT_EQ(r["jsonrpc"], "2.0");
  }
}

TEST_F(ServerTest, BatchIsRejected) {
  for (const char* line : {"[]", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]"}) {
    auto out = ExchangeLine(line);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(Code(out[0]), -32600);
    EXPECT_TRUE(out[0]["id"].is_null());
    EXPECT_EQ(Message(out[0]), "batching is not supported: send one JSON-RPC message per line");
  }
}

TEST_F(ServerTest, ParseErrorHasNullId) {
  for (const char* line :
       {"{", "{\"jsonrpc\":\"2.0\",\"id\":1,", "nope", "\"\xff\"", "{\"id\":1}garbage"}) {
    auto out = ExchangeLine(line);
    ASSERT_EQ(out.size(), 1u) << line;
    EXPECT_EQ(Code(out[0]), -32700) << line;
    EXPECT_TRUE(out[0]["id"].is_null());
    EXPECT_NE(Message(out[0]).find("invalid JSON"), std::string::npos);
  }
}

TEST_F(ServerTest, InvalidEnvelopes) {
  Initialize();
  // Wrong or missing jsonrpc, missing or non-string method: -32600 with the id.
  auto r = Exchange({{"id", 3}, {"method", "ping"}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(Code(r[0]), -32600);
  EXPECT_EQ(r[0]["id"], 3);
  r = Exchange({{"jsonrpc", "1.0"}, {"id", "x"}, {"method", "ping"}});
  EXPECT_EQ(Code(r[0]), -32600);
  EXPECT_EQ(r[0]["id"], "x");
  r = Exchange({{"jsonrpc", "2.0"}, {"id", 4}});
  EXPECT_EQ(Code(r[0]), -32600);
  r = Exchange({{"jsonrpc", "2.0"}, {"id", 5}, {"method", 12}});
  EXPECT_EQ(Code(r[0]), -32600);
  EXPECT_NE(Message(r[0]).find("method must be a string"), std::string::npos);
  // No usable id: answered with id null.
  for (json bad_id : {json(nullptr), json(true), json::object(), json::array()}) {
    r = Exchange({{"jsonrpc", "2.0"}, {"id", bad_id}, {"method", "ping"}});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(Code(r[0]), -32600);
    EXPECT_TRUE(r[0]["id"].is_null());
  }
  for (const char* line : {"42", "\"ping\"", "null", "{}"}) {
    r = ExchangeLine(line);
    ASSERT_EQ(r.size(), 1u) << line;
    EXPECT_EQ(Code(r[0]), -32600) << line;
  }
}

TEST_F(ServerTest, ParamsOfTheWrongTypeNameTheField) {
  Initialize();
  json r = Request(1, "tools/list", json::array({1}));
  EXPECT_EQ(Code(r), -32602);
  EXPECT_NE(Message(r).find("params must be an object"), std::string::npos);
  r = Request(2, "tools/list", {{"cursor", 5}});
  EXPECT_EQ(Code(r), -32602);
  EXPECT_EQ(Message(r), "params.cursor must be a string, got number");
  r = Request(3, "tools/call", {{"name", "echo"}, {"arguments", "x"}});
  EXPECT_EQ(Message(r), "params.arguments must be an object, got string");
  r = Request(4, "tools/call", {{"arguments", json::object()}});
  EXPECT_EQ(Message(r), "missing params.name");
  r = Request(5, "resources/read", json::object());
  EXPECT_EQ(Message(r), "missing params.uri");
}

TEST_F(ServerTest, NotificationsAreNeverAnswered) {
  EXPECT_TRUE(Exchange(Notify("notifications/unknown")).empty());
  EXPECT_TRUE(Exchange(Notify("tools/list")).empty());  // before initialize, and a request name
  Initialize();
  EXPECT_TRUE(Exchange(Notify("notifications/whatever", {{"x", 1}})).empty());
  EXPECT_TRUE(Exchange(Notify("notifications/cancelled", {{"requestId", 999}})).empty());
  EXPECT_TRUE(
      ExchangeLine(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":7})").empty());
  EXPECT_TRUE(ExchangeLine(R"({"jsonrpc":"1.0","method":"notifications/x"})").empty());
  EXPECT_TRUE(Exchange(Notify("ping")).empty());
  // Responses from the client (we never send requests) are ignored too.
  EXPECT_TRUE(ExchangeLine(R"({"jsonrpc":"2.0","id":1,"result":{}})").empty());
}

TEST_F(ServerTest, VersionNegotiation) {
  json r = Initialize("2025-06-18");
  EXPECT_EQ(r["result"]["protocolVersion"], "2025-06-18");
  const json& res = r["result"];
  EXPECT_EQ(res["serverInfo"]["name"], "mcp-executor");
  EXPECT_TRUE(res["serverInfo"]["title"].is_string());
  EXPECT_TRUE(res["serverInfo"]["version"].is_string());
  EXPECT_EQ(res["capabilities"]["tools"], json({{"listChanged", false}}));
  EXPECT_EQ(res["capabilities"]["logging"], json::object());
  EXPECT_EQ(res["capabilities"]["resources"], json({{"subscribe", false}, {"listChanged", false}}));
  EXPECT_NE(res["instructions"].get<std::string>().find("/workspace"), std::string::npos);
  // Only once per connection.
  EXPECT_EQ(Code(Request(1, "initialize", {{"protocolVersion", "2025-06-18"}})), -32600);
}

TEST(ServerVersionTest, EachSupportedVersionIsEchoedAndOthersGetTheLatest) {
  for (const char* v :
       {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", "1999-01-01", "2026-07-28", ""}) {
    FakeSink sink;
    ToolRegistry registry;
    Server server(sink, registry);
    server.HandleLine(json{{"jsonrpc", "2.0"},
                           {"id", 1},
                           {"method", "initialize"},
                           {"params", {{"protocolVersion", v}, {"capabilities", json::object()}}}}
                          .dump());
    ASSERT_EQ(sink.messages.size(), 1u);
    const std::string want =
        std::string(v).rfind("202", 0) == 0 && std::string(v) != "2026-07-28" ? v : "2025-11-25";
    EXPECT_EQ(sink.messages[0]["result"]["protocolVersion"], want) << v;
    EXPECT_TRUE(server.initialized());
  }
}

TEST_F(ServerTest, InitializeNeedsAProtocolVersion) {
  json r = Request(0, "initialize", {{"capabilities", json::object()}});
  EXPECT_EQ(Code(r), -32602);
  EXPECT_EQ(Message(r), "missing params.protocolVersion");
  EXPECT_FALSE(server_->initialized());
  r = Request(1, "initialize", {{"protocolVersion", 20251125}});
  EXPECT_EQ(Message(r), "params.protocolVersion must be a string, got number");
}

class PagedServerTest : public ServerTest {
 protected:
  PagedServerTest() : ServerTest(4) {}
};

TEST_F(PagedServerTest, ToolsListPaginates) {
  Initialize();
  std::vector<std::string> names;
  json params = json::object();
  int pages = 0;
  for (;;) {
    json r = Request(100 + pages, "tools/list", params);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    ++pages;
    for (const auto& t : r["result"]["tools"]) names.push_back(t["name"]);
    if (!r["result"].contains("nextCursor")) break;
    ASSERT_TRUE(r["result"]["nextCursor"].is_string());
    params = {{"cursor", r["result"]["nextCursor"]}};
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "hold", "throw", "array", "nocontent", "drop",
                                             "long", "quick"}));
  for (const char* bad :
       {"", "garbage", "tools:0", "tools:8", "tools:99", "tools:-1", "tools:1x"}) {
    json r = Request("c", "tools/list", {{"cursor", bad}});
    EXPECT_EQ(Code(r), -32602) << bad;
  }
}

TEST_F(ServerTest, ToolsListIsOnePageByDefaultAndUsesDefinitions) {
  Initialize();
  json r = Request(1, "tools/list");
  ASSERT_EQ(r["result"]["tools"].size(), 8u);
  EXPECT_FALSE(r["result"].contains("nextCursor"));
  EXPECT_EQ(r["result"]["tools"][0], tools_[0]->Definition());
}

TEST_F(ServerTest, ToolsCall) {
  Initialize();
  json r = Request(1, "tools/call", CallParams("echo", {{"a", 1}}));
  EXPECT_EQ(r["id"], 1);
  EXPECT_EQ(r["result"]["content"][0]["text"], "{\"a\":1}");
  r = Request(2, "tools/call", CallParams("missing"));
  EXPECT_EQ(Code(r), -32602);
  EXPECT_EQ(Message(r), "unknown tool 'missing'");
  // Arguments are the tool's business: absent arguments reach it as {}.
  r = Request(3, "tools/call", {{"name", "echo"}});
  EXPECT_EQ(r["result"]["content"][0]["text"], "{}");
}

TEST_F(ServerTest, BrokenToolsBecomeErrorResults) {
  Initialize();
  for (const char* name : {"throw", "array", "nocontent", "drop"}) {
    json r = Request(name, "tools/call", CallParams(name));
    ASSERT_TRUE(r.contains("result")) << name << ": " << r.dump();
    EXPECT_EQ(r["result"]["isError"], true) << name;
    EXPECT_TRUE(r["result"]["content"].is_array()) << name;
  }
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  EXPECT_EQ(Request(9, "ping")["result"], json::object());
}

TEST_F(ServerTest, SlowCallDoesNotBlockOtherRequests) {
  Initialize();
  EXPECT_TRUE(Exchange({{"jsonrpc", "2.0"},
                        {"id", 10},
                        {"method", "tools/call"},
                        {"params", CallParams("hold")}})
                  .empty());
  ASSERT_EQ(hold().held.size(), 1u);
  EXPECT_EQ(server_->calls_in_flight(), 1u);
  EXPECT_EQ(Request(11, "ping")["result"], json::object());
  EXPECT_TRUE(Request(12, "tools/list").contains("result"));
  // Same id while the first is still running: refused, the first is untouched.
  EXPECT_EQ(Code(Request(10, "tools/call", CallParams("echo"))), -32600);
  hold().held[0]->Finish(TextResult("late"));
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["id"], 10);
  EXPECT_EQ(out[0]["result"]["content"][0]["text"], "late");
  hold().held[0]->Finish(TextResult("twice"));  // no-op
  EXPECT_TRUE(sink_.Take().empty());
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  // The id is free again.
  EXPECT_TRUE(Request(10, "tools/call", CallParams("echo")).contains("result"));
}

TEST_F(ServerTest, CancellationRunsCallbackOnceAndSuppressesTheResponse) {
  Initialize();
  Send(
      {{"jsonrpc", "2.0"}, {"id", "c1"}, {"method", "tools/call"}, {"params", CallParams("hold")}});
  ASSERT_EQ(hold().held.size(), 1u);
  auto call = hold().held[0];
  int cancels = 0;
  call->OnCancel([&] { ++cancels; });
  // A numeric id "c1" does not match; neither does an unknown one.
  EXPECT_TRUE(Exchange(Notify("notifications/cancelled", {{"requestId", 1}})).empty());
  EXPECT_EQ(cancels, 0);
  EXPECT_TRUE(Exchange(Notify("notifications/cancelled", {{"requestId", "c1"}, {"reason", "user"}}))
                  .empty());
  EXPECT_EQ(cancels, 1);
  EXPECT_TRUE(call->cancelled());
  EXPECT_TRUE(Exchange(Notify("notifications/cancelled", {{"requestId", "c1"}})).empty());
  EXPECT_EQ(cancels, 1);
  call->Progress(1, std::nullopt, "after cancel");
  call->Finish(TextResult("too late"));
  EXPECT_TRUE(sink_.Take().empty()) << "a cancelled request gets no response";
  EXPECT_EQ(server_->calls_in_flight(), 0u);
}

TEST_F(ServerTest, CancelAfterFinishIsIgnoredAndLateOnCancelStillRuns) {
  Initialize();
  Send({{"jsonrpc", "2.0"}, {"id", 0}, {"method", "tools/call"}, {"params", CallParams("hold")}});
  Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", CallParams("hold")}});
  ASSERT_EQ(hold().held.size(), 2u);
  hold().held[0]->Finish(TextResult("done"));
  ASSERT_EQ(sink_.Take().size(), 1u);
  int cancels = 0;
  hold().held[0]->OnCancel([&] { ++cancels; });
  Send(Notify("notifications/cancelled", {{"requestId", 0}}));
  EXPECT_EQ(cancels, 0);
  EXPECT_FALSE(hold().held[0]->cancelled());
  // Cancelled before the tool registered its callback: it runs when registered.
  Send(Notify("notifications/cancelled", {{"requestId", 1}}));
  hold().held[1]->OnCancel([&] { ++cancels; });
  EXPECT_EQ(cancels, 1);
  EXPECT_TRUE(sink_.Take().empty());
}

TEST_F(ServerTest, ProgressIsSentOnlyWithATokenAndOnlyForward) {
  Initialize();
  Send({{"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "tools/call"},
        {"params", CallParams("hold", json::object(), {{"progressToken", "tok"}})}});
  Send({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"}, {"params", CallParams("hold")}});
  ASSERT_EQ(hold().held.size(), 2u);
  auto with = hold().held[0];
  auto without = hold().held[1];
  EXPECT_TRUE(with->wants_progress());
  EXPECT_FALSE(without->wants_progress());
  without->Progress(1, 2, "nope");
  EXPECT_TRUE(sink_.Take().empty());

  with->Progress(1, 10, "one");
  with->Progress(1, 10, "same");  // not forward: dropped
  with->Progress(0.5, 10, "back");
  with->Progress(2, std::nullopt, "");
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["method"], "notifications/progress");
  EXPECT_EQ(
      out[0]["params"],
      json({{"progressToken", "tok"}, {"progress", 1.0}, {"total", 10.0}, {"message", "one"}}));
  EXPECT_EQ(out[1]["params"], json({{"progressToken", "tok"}, {"progress", 2.0}}));
  EXPECT_FALSE(out[1].contains("id"));
  with->Finish(TextResult("ok"));
  with->Progress(3, std::nullopt, "after finish");
  out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["id"], 1);
}

TEST_F(ServerTest, ProgressTokenMayBeAnIntegerButNothingElse) {
  Initialize();
  Send({{"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "tools/call"},
        {"params", CallParams("hold", json::object(), {{"progressToken", 0}})}});
  ASSERT_EQ(hold().held.size(), 1u);
  hold().held[0]->Progress(5, std::nullopt, "x");
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["params"]["progressToken"], 0);
  json r = Request(2, "tools/call", CallParams("echo", json::object(), {{"progressToken", true}}));
  EXPECT_EQ(Code(r), -32602);
  EXPECT_NE(Message(r).find("params._meta.progressToken"), std::string::npos);
}

TEST_F(ServerTest, LoggingLevelFilters) {
  Initialize();
  json r = Request(1, "logging/setLevel", {{"level", "verbose"}});
  EXPECT_EQ(Code(r), -32602);
  EXPECT_NE(Message(r).find("params.level must be one of"), std::string::npos);
  Send({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"}, {"params", CallParams("hold")}});
  auto call = hold().held.at(0);
  // Default: warning and above.
  call->Log("info", "quiet");
  server_->Log(LogLevel::kWarning, "loud");
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["method"], "notifications/message");
  EXPECT_EQ(out[0]["params"]["level"], "warning");
  EXPECT_EQ(out[0]["params"]["data"], "loud");

  EXPECT_EQ(Request(3, "logging/setLevel", {{"level", "error"}})["result"], json::object());
  call->Log("warning", "filtered");
  call->Log("error", "shown");
  server_->Log(LogLevel::kCritical, "crit");
  out = sink_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["params"]["data"], "shown");
  EXPECT_EQ(out[0]["params"]["logger"], "hold");
  EXPECT_EQ(out[1]["params"]["level"], "critical");

  EXPECT_EQ(Request(4, "logging/setLevel", {{"level", "debug"}})["result"], json::object());
  call->Log("debug", "now visible");
  EXPECT_EQ(sink_.Take().size(), 1u);
}

TEST_F(ServerTest, ResourcesWithoutProvider) {
  Initialize();
  EXPECT_EQ(Request(1, "resources/list")["result"], json({{"resources", json::array()}}));
  EXPECT_EQ(Code(Request(2, "resources/read", {{"uri", "file:///workspace/x"}})), -32002);
  EXPECT_EQ(Request(3, "resources/templates/list")["result"],
            json({{"resourceTemplates", json::array()}}));
}

TEST_F(ServerTest, ResourcesDelegateToTheProvider) {
  server_->SetResources(std::make_unique<FakeResources>());
  Initialize();
  EXPECT_EQ(Request(1, "resources/list")["result"]["resources"][0]["name"], "a");
  EXPECT_EQ(Code(Request(2, "resources/list", {{"cursor", "zzz"}})), -32602);
  EXPECT_EQ(Request(3, "resources/read",
                    {{"uri", "file:///workspace/a.txt"}})["result"]["contents"][0]["text"],
            "hi");
  json r = Request(4, "resources/read", {{"uri", "file:///workspace/none"}});
  EXPECT_EQ(Code(r), -32002);
  EXPECT_NE(Message(r).find("resource not found"), std::string::npos);
  EXPECT_EQ(r["error"]["data"]["uri"], "file:///workspace/none");
  EXPECT_EQ(Code(Request(5, "resources/read", {{"uri", "file:///workspace/../etc"}})), -32602);
}

TEST_F(ServerTest, ExceptionsInHandlersBecomeInternalErrors) {
  ToolRegistry registry;
  registry.Add(std::make_unique<ThrowingDefinitionTool>());
  FakeSink sink;
  Server server(sink, registry);
  server.HandleLine(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}})");
  server.HandleLine(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})");
  ASSERT_EQ(sink.messages.size(), 2u);
  EXPECT_EQ(sink.messages[1]["id"], 2);
  EXPECT_EQ(sink.messages[1]["error"]["code"], -32603);
  EXPECT_NE(sink.messages[1]["error"]["message"].get<std::string>().find("no definition today"),
            std::string::npos);
}

TEST_F(ServerTest, DeepNestingIsRefusedWithoutRecursing) {
  Initialize();
  std::string deep = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":" +
                     std::string(100000, '[') + std::string(100000, ']') + "}}";
  auto out = ExchangeLine(deep);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Code(out[0]), -32600);
  // Brackets inside strings do not count.
  json r = Request(2, "ping", {{"s", std::string(1000, '[')}});
  EXPECT_EQ(r["result"], json::object());
}

TEST_F(ServerTest, OversizedInputGetsAnError) {
  server_->HandleOversized(16u << 20);
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Code(out[0]), -32600);
  EXPECT_TRUE(out[0]["id"].is_null());
  EXPECT_NE(Message(out[0]).find("message exceeds 16777216 bytes"), std::string::npos);
}

TEST_F(ServerTest, ShutdownHooksRunOnceNewestFirst) {
  std::vector<int> order;
  server_->OnShutdown([&] { order.push_back(1); });
  server_->OnShutdown([&] { throw std::runtime_error("hook failed"); });
  server_->OnShutdown([&] { order.push_back(3); });
  server_->Shutdown();
  server_->Shutdown();
  EXPECT_EQ(order, (std::vector<int>{3, 1}));
}

TEST_F(ServerTest, CallsOutlivingTheServerSendNothing) {
  Initialize();
  Send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", CallParams("hold")}});
  auto call = hold().held.at(0);
  hold().held.clear();
  server_.reset();
  call->Finish(TextResult("after the server"));
  call.reset();
  EXPECT_TRUE(sink_.Take().empty());
}

TEST(JsonRpcTest, SerializeIsCompactAndNeverThrows) {
  json j{{"text", std::string("a\xff\xfe"
                              "b\n")},
         {"n", 1}};
  std::string s;
  ASSERT_NO_THROW(s = Serialize(j));
  EXPECT_EQ(s.find('\n'), std::string::npos);
  EXPECT_EQ(s.find(' '), std::string::npos);
  EXPECT_TRUE(json::accept(s));
}

TEST(JsonRpcTest, NestingDepth) {
  EXPECT_EQ(NestingDepth("{}"), 1u);
  EXPECT_EQ(NestingDepth("[[1],{\"a\":[2]}]"), 3u);
  EXPECT_EQ(NestingDepth("\"[[[[\""), 0u);
  EXPECT_EQ(NestingDepth("[\"\\\"[[\"]"), 1u);
}

}  // namespace
}  // namespace mcpx::mcp
