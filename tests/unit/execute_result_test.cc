// execute_python's result from a typed outcome: every structuredContent matches the outputSchema
// the tool declares, the text block reads in a fixed order, and only "ok" is not an error.
#include "tools/execute_result.h"

#include <gtest/gtest.h>

#include <functional>
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

constexpr uint64_t kPage = 8192;

std::string Text(const json& result) { return result["content"][0]["text"].get<std::string>(); }

// A stream as the session layer hands it over: views within `budget` and within the brief size.
session::StreamOutput Stream(const std::string& text, uint64_t budget = kPage) {
  session::OutputBuffer b(budget, 1 << 30, nullptr);
  b.Append(text);
  b.Finish();
  session::StreamOutput so;
  so.budget = budget;
  so.full = b.View(budget);
  so.brief = b.View(session::kBriefOutputBytes);
  so.bytes = b.total_bytes();
  so.lines = b.total_lines();
  return so;
}

std::string Lines(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "line " + std::to_string(i) + "\n";
  return s;
}

TEST(ExecuteResultTest, EveryStatusMatchesTheOutputSchema) {
  const json schema = ExecuteOutputSchema();
  for (ExecStatus st : {ExecStatus::kOk, ExecStatus::kError, ExecStatus::kTimeout,
                        ExecStatus::kCancelled, ExecStatus::kKilled}) {
    ExecOutcome o = Outcome(st);
    o.out = Stream("out");
    o.result = "42";
    o.error = session::ErrorInfo{"ValueError", "bad", "Traceback ...\nValueError: bad"};
    o.images.push_back({"iVBORw0KGgo=", 4, 3, 8});
    o.cpu_ms = 1.5;
    o.peak_memory_bytes = 1 << 20;
    o.kill_reason = st == ExecStatus::kKilled ? "memory limit 1 GiB exceeded" : "";
    o.saved_files = {"/workspace/a.png"};
    o.notes = {"n"};
    const json r = ExecuteResult(o);
    const std::string name(session::ExecStatusName(st));
    ExpectMatches(r["structuredContent"], schema, name);
    EXPECT_EQ(r["structuredContent"]["status"], name);
    EXPECT_EQ(r["isError"], st != ExecStatus::kOk) << name;
    EXPECT_EQ(r["structuredContent"].contains("kill_reason"), st == ExecStatus::kKilled) << name;
  }
  // Nothing to say: the optional fields are left out, never null.
  const json bare = ExecuteResult(Outcome(ExecStatus::kOk))["structuredContent"];
  ExpectMatches(bare, schema, "bare");
  for (const char* k :
       {"result", "error", "cpu_ms", "peak_memory_bytes", "kill_reason", "saved_files", "notes"}) {
    EXPECT_FALSE(bare.contains(k)) << k;
  }
}

TEST(ExecuteResultTest, NoSchemaTypeIsAUnion) {
  // A schema's "type" is one string; "properties" maps names (one may be "type") to schemas.
  std::function<void(const json&, const std::string&)> walk = [&](const json& schema,
                                                                  const std::string& where) {
    if (schema.contains("type")) {
      EXPECT_TRUE(schema["type"].is_string()) << where;
    }
    const json properties = schema.value("properties", json::object());
    for (const auto& [name, sub] : properties.items()) walk(sub, where + "." + name);
    if (schema.contains("items")) walk(schema["items"], where + "[]");
  };
  walk(ExecuteOutputSchema(), "outputSchema");
}

TEST(ExecuteResultTest, TheTextBlockReadsNotesOutputResultThenSaved) {
  ExecOutcome o = Outcome(ExecStatus::kOk);
  o.notes = {"timeout_seconds capped at 600 s by the policy"};
  o.out = Stream("hello\n");
  o.err = Stream("warn");
  o.result = "42";
  o.saved_files = {"/workspace/.mcp-executor/outputs/x.png"};
  EXPECT_EQ(Text(ExecuteResult(o)),
            "[note] timeout_seconds capped at 600 s by the policy\nhello\n[stderr]\nwarn\n"
            "Out[3]: 42\n[saved] /workspace/.mcp-executor/outputs/x.png");
}

TEST(ExecuteResultTest, ImagesTheKernelsNoteNamesAreNotListedAgain) {
  ExecOutcome o = Outcome(ExecStatus::kOk);
  const std::string dir = "/workspace/.mcp-executor/outputs/";
  o.notes = {"2 more images not shown (max_images 5): saved as " + dir + "t-cell3-image{6,7}.png"};
  o.saved_files = {dir + "t-cell3-image6.png", dir + "t-cell3-image7.png", dir + "other.png"};
  const std::string text = Text(ExecuteResult(o));
  EXPECT_EQ(text.find("[saved] " + dir + "t-cell3"), std::string::npos) << text;
  EXPECT_NE(text.find("[saved] " + dir + "other.png"), std::string::npos) << text;
}

TEST(ExecuteResultTest, AMultiLineValueStartsOnItsOwnLine) {
  ExecOutcome o = Outcome(ExecStatus::kOk);
  o.result = "   a\n0  1";
  EXPECT_EQ(Text(ExecuteResult(o)), "Out[3]:\n   a\n0  1");
}

TEST(ExecuteResultTest, ASuccessCarriesTheBudgetInStructuredContentAndABriefText) {
  ExecOutcome o = Outcome(ExecStatus::kOk);
  const std::string all = Lines(3000);
  o.out = Stream(all);
  o.out.saved = "/workspace/.mcp-executor/outputs/s-3-stdout.txt";
  o.out.saved_bytes = all.size();
  o.saved_files = {o.out.saved};
  o.truncated = true;
  const json r = ExecuteResult(o);
  const std::string stdout_text = r["structuredContent"]["stdout"];
  const std::string text = Text(r);
  EXPECT_GT(stdout_text.size(), 7000u);
  EXPECT_LT(stdout_text.size(), kPage + 300);
  EXPECT_LT(text.size(), session::kBriefOutputBytes + 400);
  EXPECT_EQ(stdout_text.rfind("line 0\n", 0), 0u);
  EXPECT_NE(stdout_text.find("line 2999\n"), std::string::npos);
  EXPECT_NE(stdout_text.find("lines ("), std::string::npos);
  EXPECT_NE(
      stdout_text.find("; all 3,000 lines: /workspace/.mcp-executor/outputs/s-3-stdout.txt; "
                       "read_file offset=" +
                       std::to_string(o.out.full.cut->offset) + " limit=8192 reads on from here]"),
      std::string::npos)
      << stdout_text;
  EXPECT_NE(text.find("not shown here; structuredContent.stdout has 8.0 KiB of head and tail"),
            std::string::npos)
      << text;
  // The saved file is named by the markers, not once more.
  EXPECT_EQ(text.find("[saved]"), std::string::npos);
}

TEST(ExecuteResultTest, AFailureCarriesTheBudgetInTheTextBlock) {
  ExecOutcome o = Outcome(ExecStatus::kError);
  o.out = Stream(Lines(500));  // 4.4 KB: within the budget, past the brief view
  o.error = session::ErrorInfo{"KeyError", "'x'", "Traceback\nKeyError: 'x'"};
  const json r = ExecuteResult(o);
  EXPECT_NE(Text(r).find("line 250\n"), std::string::npos);
  const std::string brief = r["structuredContent"]["stdout"];
  EXPECT_LT(brief.size(), session::kBriefOutputBytes + 200);
  EXPECT_NE(brief.find("not shown here; all of it is in the text content]"), std::string::npos)
      << brief;
  EXPECT_EQ(r["structuredContent"]["error"]["traceback"], "Traceback\nKeyError: 'x'");
}

TEST(ExecuteResultTest, AnUnsavedStreamSaysWhy) {
  ExecOutcome o = Outcome(ExecStatus::kOk);
  o.out = Stream(Lines(3000));
  o.out.save_error = "no room left in the workspace";
  const std::string s = ExecuteResult(o)["structuredContent"]["stdout"];
  EXPECT_NE(s.find("the whole output was not saved: no room left in the workspace]"),
            std::string::npos)
      << s;
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
