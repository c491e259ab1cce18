// The 2026-07-28 era: server/discover, stateless requests with per-request _meta, resultType and
// caching hints, the revision's errors, and how it lives beside the handshake revisions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mcp/request_meta.h"
#include "mcp_server_fixture.h"

namespace mcpx::mcp {
namespace {

using namespace test_support;

constexpr const char* kVersionKey = "io.modelcontextprotocol/protocolVersion";
constexpr const char* kCapsKey = "io.modelcontextprotocol/clientCapabilities";
constexpr const char* kServerInfoKey = "io.modelcontextprotocol/serverInfo";

TEST_F(ServerTest, DiscoverNeedsNoHandshakeAndDescribesTheServer) {
  json r = Modern(1, "server/discover");
  ASSERT_TRUE(r.contains("result")) << r.dump();
  const json& res = r["result"];
  EXPECT_EQ(res["supportedVersions"],
            json::array({"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}));
  EXPECT_EQ(res["resultType"], "complete");
  EXPECT_EQ(res["_meta"][kServerInfoKey]["name"], "mcp-executor");
  EXPECT_TRUE(res["_meta"][kServerInfoKey]["version"].is_string());
  EXPECT_EQ(res["capabilities"]["tools"], json({{"listChanged", false}}));
  EXPECT_EQ(res["capabilities"]["resources"], json({{"listChanged", false}}));
  EXPECT_EQ(res["capabilities"]["logging"], json::object());
  // The extension's client adapter wants exactly {}.
  EXPECT_EQ(res["capabilities"]["extensions"],
            json({{"io.modelcontextprotocol/tasks", json::object()}}));
  EXPECT_FALSE(res["capabilities"].contains("tasks"));  // the 2025-11-25 form is not offered here
  EXPECT_NE(res["instructions"].get<std::string>().find("/workspace"), std::string::npos);
  EXPECT_EQ(res["ttlMs"], 3600000);
  EXPECT_EQ(res["cacheScope"], "public");
  // Stateless: nothing was negotiated.
  EXPECT_FALSE(server_->initialized());
}

TEST_F(ServerTest, DiscoverWithoutPerRequestMetaIsInvalidParams) {
  for (json params : {json(nullptr), json::object(), json({{"_meta", json::object()}}),
                      json({{"_meta", {{"progressToken", 1}}}})}) {
    json r = Request(1, "server/discover", params);
    EXPECT_EQ(Code(r), -32602) << params.dump();
    EXPECT_NE(Message(r).find(kVersionKey), std::string::npos) << Message(r);
  }
  Initialize();  // a handshake does not make a bare discover valid either
  EXPECT_EQ(Code(Request(2, "server/discover")), -32602);
}

TEST_F(ServerTest, MissingOrMistypedVersionIsInvalidParams) {
  json r = Request(1, "tools/list", {{"_meta", {{kCapsKey, json::object()}}}});
  EXPECT_EQ(Code(r), -32602);
  EXPECT_EQ(Message(r),
            "params._meta[\"io.modelcontextprotocol/protocolVersion\"] is missing: every "
            "2026-07-28 request names its protocol version");
  r = Request(2, "tools/list", {{"_meta", {{kVersionKey, 20260728}, {kCapsKey, json::object()}}}});
  EXPECT_EQ(Code(r), -32602);
  EXPECT_NE(Message(r).find("must be a string, got number"), std::string::npos);
}

TEST_F(ServerTest, UnsupportedVersionNamesWhatIsSupported) {
  for (const char* v : {"2099-01-01", "", "2025-11-25"}) {
    json r = Request(1, "server/discover", {{"_meta", {{kVersionKey, v}, {kCapsKey, {}}}}});
    ASSERT_EQ(Code(r), -32022) << v;
    EXPECT_EQ(r["error"]["data"]["requested"], v);
    EXPECT_EQ(r["error"]["data"]["supported"], SupportedVersions());
    EXPECT_NE(Message(r).find("unsupported protocol version '" + std::string(v) + "'"),
              std::string::npos);
  }
  // A handshake revision in _meta: the message says how that one is served.
  json r = Request(2, "tools/list", {{"_meta", {{kVersionKey, "2025-06-18"}, {kCapsKey, {}}}}});
  EXPECT_NE(Message(r).find("2025-06-18 is served after an initialize handshake"),
            std::string::npos);
}

TEST_F(ServerTest, MissingClientCapabilitiesIsInvalidParams) {
  json r = Request(1, "tools/list", {{"_meta", {{kVersionKey, "2026-07-28"}}}});
  EXPECT_EQ(Code(r), -32602);
  EXPECT_EQ(Message(r),
            "params._meta[\"io.modelcontextprotocol/clientCapabilities\"] is missing: every "
            "2026-07-28 request declares its client capabilities");
  r = Request(2, "tools/list", {{"_meta", {{kVersionKey, "2026-07-28"}, {kCapsKey, "all"}}}});
  EXPECT_NE(Message(r).find("must be an object, got string"), std::string::npos);
}

TEST_F(ServerTest, BadLogLevelIsInvalidParams) {
  json r = Modern(1, "tools/list", {{"_meta", {{"io.modelcontextprotocol/logLevel", "loud"}}}});
  EXPECT_EQ(Code(r), -32602);
  EXPECT_NE(Message(r).find("must be one of debug"), std::string::npos);
}

TEST_F(ServerTest, RemovedMethodsAreMethodNotFoundForModernRequests) {
  for (const char* method : {"ping", "logging/setLevel", "tasks/result"}) {
    json r = Modern(1, method, {{"level", "info"}, {"taskId", "x"}});
    EXPECT_EQ(Code(r), -32601) << method;
    EXPECT_EQ(r["error"]["data"]["method"], method);
  }
}

TEST_F(ServerTest, ToolsListCarriesCachingHintsInADeterministicOrder) {
  json first = Modern(1, "tools/list");
  ASSERT_TRUE(first.contains("result")) << first.dump();
  const json& res = first["result"];
  EXPECT_EQ(res["resultType"], "complete");
  EXPECT_EQ(res["ttlMs"], 3600000);
  EXPECT_EQ(res["cacheScope"], "public");
  std::vector<std::string> names;
  for (const auto& t : res["tools"]) {
    names.push_back(t["name"]);
    // execution.taskSupport is the 2025-11-25 form; the extension has no per-tool flag.
    EXPECT_FALSE(t.contains("execution")) << t.dump();
  }
  EXPECT_EQ(names, registry_.names());
  EXPECT_EQ(Modern(2, "tools/list")["result"]["tools"], res["tools"]);
}

TEST_F(ServerTest, ModernToolCallNeedsNoHandshake) {
  json r = Modern(1, "tools/call", CallParams("echo", {{"x", 1}}));
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_EQ(r["result"]["resultType"], "complete");
  EXPECT_EQ(r["result"]["content"][0]["text"], R"({"x":1})");
  EXPECT_EQ(r["result"]["_meta"][kServerInfoKey]["name"], "mcp-executor");
  EXPECT_FALSE(server_->initialized());
  // A legacy request on the same stream is still held to the handshake.
  EXPECT_EQ(Code(Request(2, "tools/list")), rpc::kNotInitialized);
}

TEST_F(ServerTest, BothErasOnOneStream) {
  Initialize();
  json legacy = Request(1, "tools/list");
  EXPECT_FALSE(legacy["result"].contains("resultType"));
  EXPECT_FALSE(legacy["result"].contains("ttlMs"));
  json modern = Modern(2, "tools/list");
  EXPECT_EQ(modern["result"]["resultType"], "complete");
  EXPECT_EQ(Request(3, "ping")["result"], json::object());
}

TEST_F(ServerTest, ModernErrorsAreNotDecorated) {
  json r = Modern(1, "tools/call", CallParams("nope"));
  EXPECT_EQ(Code(r), -32602);
  EXPECT_FALSE(r.contains("result"));
  EXPECT_TRUE(r["error"]["data"]["availableTools"].is_array());
}

TEST_F(ServerTest, ModernResourcesHaveHintsAndNotFoundIsInvalidParams) {
  server_->SetResources(std::make_unique<FakeResources>());
  json list = Modern(1, "resources/list");
  EXPECT_EQ(list["result"]["ttlMs"], 0);  // workspace files change under every cell
  EXPECT_EQ(list["result"]["cacheScope"], "private");
  EXPECT_EQ(list["result"]["resultType"], "complete");
  json read = Modern(2, "resources/read", {{"uri", "file:///workspace/a.txt"}});
  EXPECT_EQ(read["result"]["contents"][0]["text"], "hi");
  EXPECT_EQ(read["result"]["ttlMs"], 0);
  EXPECT_EQ(read["result"]["cacheScope"], "private");
  json missing = Modern(3, "resources/read", {{"uri", "file:///workspace/b.txt"}});
  EXPECT_EQ(Code(missing), -32602);
  EXPECT_EQ(missing["error"]["data"]["uri"], "file:///workspace/b.txt");
  json templates = Modern(4, "resources/templates/list");
  EXPECT_EQ(templates["result"]["resourceTemplates"], json::array());
  EXPECT_EQ(templates["result"]["ttlMs"], 3600000);
  EXPECT_EQ(templates["result"]["cacheScope"], "public");
  // The handshake revisions keep -32002 and undecorated results.
  Initialize();
  EXPECT_EQ(Code(Request(5, "resources/read", {{"uri", "file:///workspace/b.txt"}})), -32002);
  EXPECT_FALSE(Request(6, "resources/list")["result"].contains("ttlMs"));
}

TEST_F(ServerTest, ModernLogMessagesOnlyForARequestThatAsked) {
  // No level in the request: the tool's log lines stay on the server.
  Send({{"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "tools/call"},
        {"params", {{"name", "hold"}, {"arguments", json::object()}, {"_meta", ModernMeta()}}}});
  ASSERT_EQ(hold().held.size(), 1u);
  hold().held[0]->Log("error", "quiet");
  EXPECT_TRUE(sink_.Take().empty());
  hold().held[0]->Finish(TextResult("done"));
  sink_.Take();
  // With a level: messages at or above it, while the request is open.
  Send({{"jsonrpc", "2.0"},
        {"id", 2},
        {"method", "tools/call"},
        {"params",
         {{"name", "hold"},
          {"arguments", json::object()},
          {"_meta", ModernMeta(false, {{"io.modelcontextprotocol/logLevel", "warning"}})}}}});
  ASSERT_EQ(hold().held.size(), 2u);
  auto call = hold().held[1];
  call->Log("info", "below");
  EXPECT_TRUE(sink_.Take().empty());
  call->Log("error", "above");
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["method"], "notifications/message");
  EXPECT_EQ(out[0]["params"]["level"], "error");
  EXPECT_EQ(out[0]["params"]["data"], "above");
  call->Finish(TextResult("done"));
  sink_.Take();
  call->Log("error", "after the end");
  EXPECT_TRUE(sink_.Take().empty());
}

TEST_F(ServerTest, ServerLogsGoOnlyToAnInitializedLegacyClient) {
  server_->Log(LogLevel::kError, "before anyone asked");
  EXPECT_TRUE(sink_.Take().empty());
  Modern(1, "tools/list");
  server_->Log(LogLevel::kError, "a modern client never subscribed to this");
  EXPECT_TRUE(sink_.Take().empty());
  Initialize();
  server_->Log(LogLevel::kError, "now");
  auto out = sink_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["method"], "notifications/message");
}

TEST_F(ServerTest, InitializeIgnoresPerRequestMeta) {
  json r = Request(0, "initialize",
                   {{"protocolVersion", "2025-11-25"},
                    {"capabilities", json::object()},
                    {"_meta", ModernMeta()}});
  EXPECT_EQ(r["result"]["protocolVersion"], "2025-11-25");
  EXPECT_FALSE(r["result"].contains("resultType"));
  EXPECT_TRUE(server_->initialized());
}

TEST(RequestMetaTest, LegacyUnlessAPerRequestKeyIsPresent) {
  for (json params : {json::object(), json({{"_meta", "x"}}), json({{"_meta", {{"a", 1}}}})}) {
    auto m = ReadRequestMeta(params);
    ASSERT_TRUE(m.ok());
    EXPECT_FALSE(m.value().modern) << params.dump();
  }
  auto m = ReadRequestMeta(
      {{"_meta",
        {{kVersionKey, "2026-07-28"},
         {kCapsKey, {{"extensions", {{"io.modelcontextprotocol/tasks", json::object()}}}}},
         {"io.modelcontextprotocol/logLevel", "debug"}}}});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m.value().modern);
  EXPECT_TRUE(m.value().tasks_extension());
  EXPECT_EQ(m.value().log_level, LogLevel::kDebug);
  // clientInfo alone marks a request modern, which then lacks its version.
  auto info_only = ReadRequestMeta({{"_meta", {{"io.modelcontextprotocol/clientInfo", {}}}}});
  ASSERT_FALSE(info_only.ok());
  EXPECT_EQ(info_only.error().code, -32602);
}

TEST(RequestMetaTest, MissingTasksExtensionNamesTheCapability) {
  RpcError e = MissingTasksExtension("tasks/get");
  EXPECT_EQ(e.code, -32021);
  EXPECT_EQ(e.data,
            json({{"requiredCapabilities",
                   {{"extensions", {{"io.modelcontextprotocol/tasks", json::object()}}}}}}));
}

TEST(RequestMetaTest, ModernResultKeepsAResultTypeItHasAndAddsServerInfo) {
  json info{{"name", "s"}};
  EXPECT_EQ(ModernResult(json::object(), info)["resultType"], "complete");
  json task = ModernResult({{"resultType", "task"}, {"_meta", {{"k", 1}}}}, info);
  EXPECT_EQ(task["resultType"], "task");
  EXPECT_EQ(task["_meta"]["k"], 1);
  EXPECT_EQ(task["_meta"][kServerInfoKey], info);
}

}  // namespace
}  // namespace mcpx::mcp
