// execute_python's result from a typed outcome: every structuredContent matches the outputSchema
// the tool declares, the text block reads in a fixed order, and only "ok" is not an error.
#include "tools/execute_result.h"

#include <gtest/gtest.h>

#include <string>

namespace mcpx::tools {
namespace {

using nlohmann::json;
using session::ExecOutcome;
using session::ExecStatus;

// A small JSON Schema check for what ExecuteOutputSchema uses: type (string or list), enum,
// required, properties, items.
bool TypeMatches(const json& v, const std::string& type) {
  if (type == "null") return v.is_null();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  return false;
}

void ExpectMatches(const json& v, const json& schema, const std::string& where) {
  if (schema.contains("type")) {
    const json types = schema["type"].is_array() ? schema["type"] : json::array({schema["type"]});
    bool ok = false;
    for (const auto& t : types) ok = ok || TypeMatches(v, t.get<std::string>());
    EXPECT_TRUE(ok) << where << " is " << v.dump() << ", schema " << schema["type"].dump();
  }
  if (schema.contains("enum")) {
    EXPECT_NE(std::find(schema["enum"].begin(), schema["enum"].end(), v), schema["enum"].end())
        << where;
  }
  if (v.is_object()) {
    const json required = schema.value("required", json::array());
    const json properties = schema.value("properties", json::object());
    for (const auto& r : required) {
      EXPECT_TRUE(v.contains(r.get<std::string>())) << where << " lacks " << r;
    }
    for (const auto& [k, sub] : properties.items()) {
      if (v.contains(k)) ExpectMatches(v[k], sub, where + "." + k);
    }
    for (const auto& [k, _] : v.items()) {
      EXPECT_TRUE(properties.contains(k)) << where << "." << k << " is not in the schema";
    }
  }
  if (v.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < v.size(); ++i) {
      ExpectMatches(v[i], schema["items"], where + "[" + std::to_string(i) + "]");
    }
  }
}

ExecOutcome Outcome(ExecStatus status) {
  ExecOutcome o;
  o.session = "s";
  o.status = status;
  o.execution_count = 3;
  o.timeout_s = 2;
  return o;
}

std::string Text(const json& result) { return result["content"][0]["text"].get<std::string>(); }

TEST(ExecuteResultTest, EveryStatusMatchesTheOutputSchema) {
  const json schema = ExecuteOutputSchema();
  for (ExecStatus st : {ExecStatus::kOk, ExecStatus::kError, ExecStatus::kTimeout,
                        ExecStatus::kCancelled, ExecStatus::kKilled}) {
    ExecOutcome o = Outcome(st);
    o.stdout_text = "out";
    o.result = "42";
    o.error = session::ErrorInfo{"ValueError", "bad", "Traceback ...\nValueError: bad"};
    o.images.push_back({"iVBORw0KGgo=", 4, 3, 8});
    o.cpu_ms = 1.5;
    o.peak_memory_bytes = 1 << 20;
    o.kill_reason = st == ExecStatus::kKilled ? "memory limit 1 GiB exceeded" : "";
    o.saved_files = {"a.png"};
    o.notes = {"n"};
    const json r = ExecuteResult(o);
    const std::string name(session::ExecStatusName(st));
    ExpectMatches(r["structuredContent"], schema, name);
    EXPECT_EQ(r["structuredContent"]["status"], name);
    EXPECT_EQ(r["isError"], st != ExecStatus::kOk) << name;
    EXPECT_EQ(r["structuredContent"]["kill_reason"].is_null(), st != ExecStatus::kKilled) << name;
  }
}

TEST(ExecuteResultTest, TheTextBlockReadsNotesOutputResultThenSaved) {
  ExecOutcome o = Outcome(ExecStatus::kOk);
  o.notes = {"timeout_seconds capped at 600 s by the policy"};
  o.stdout_text = "hello\n";
  o.stderr_text = "warn";
  o.result = "42";
  o.saved_files = {".mcp-executor/outputs/s-3-stdout.txt"};
  EXPECT_EQ(Text(ExecuteResult(o)),
            "[note] timeout_seconds capped at 600 s by the policy\nhello\n[stderr]\nwarn\n"
            "Out[3]: 42\n[saved] .mcp-executor/outputs/s-3-stdout.txt");
}

TEST(ExecuteResultTest, ErrorsShowTheTracebackOrTypeAndMessage) {
  ExecOutcome o = Outcome(ExecStatus::kError);
  o.error = session::ErrorInfo{"ZeroDivisionError", "division by zero", "Traceback: 1/0"};
  EXPECT_EQ(Text(ExecuteResult(o)), "Traceback: 1/0");
  o.error->traceback.clear();
  EXPECT_EQ(Text(ExecuteResult(o)), "ZeroDivisionError: division by zero");
}

TEST(ExecuteResultTest, InterruptedAndKilledCallsSayWhatHappenedToTheState) {
  EXPECT_EQ(Text(ExecuteResult(Outcome(ExecStatus::kTimeout))),
            "[status] timeout: interrupted after 2.000000 s; the session keeps its state");
  EXPECT_EQ(Text(ExecuteResult(Outcome(ExecStatus::kCancelled))),
            "[status] cancelled: interrupted; the session keeps its state");
  ExecOutcome killed = Outcome(ExecStatus::kKilled);
  killed.kill_reason = "memory limit 1 GiB exceeded";
  const json r = ExecuteResult(killed);
  EXPECT_EQ(Text(r),
            "[status] killed: memory limit 1 GiB exceeded; the session's state is lost and the "
            "next call starts a fresh kernel");
  EXPECT_EQ(r["structuredContent"]["kill_reason"], "memory limit 1 GiB exceeded");
}

TEST(ExecuteResultTest, NothingToSayIsSaid) {
  EXPECT_EQ(Text(ExecuteResult(Outcome(ExecStatus::kOk))), "(no output)");
}

TEST(ExecuteResultTest, ImagesFollowTheTextAndTheirSizesAreStructured) {
  ExecOutcome o = Outcome(ExecStatus::kOk);
  o.images.push_back({"AAAA", 640, 480, 3});
  const json r = ExecuteResult(o);
  ASSERT_EQ(r["content"].size(), 2u);
  EXPECT_EQ(r["content"][0]["type"], "text");
  EXPECT_EQ(r["content"][1],
            (json{{"type", "image"}, {"data", "AAAA"}, {"mimeType", "image/png"}}));
  EXPECT_EQ(r["structuredContent"]["images"][0],
            (json{{"mime_type", "image/png"}, {"width", 640}, {"height", 480}, {"bytes", 3}}));
}

}  // namespace
}  // namespace mcpx::tools
