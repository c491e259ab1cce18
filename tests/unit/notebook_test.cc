// The session record: the notebook JSON builder (notebook.h) and the recorder that writes it to a
// real Workspace on a temp dir (notebook_recorder.h): files, appends after a restart, files it
// must not touch, the size cap.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "session/notebook.h"
#include "session/notebook_recorder.h"
#include "workspace/workspace.h"

namespace mcpx::session {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

ExecOutcome Outcome(ExecStatus status = ExecStatus::kOk) {
  ExecOutcome o;
  o.session = "nb";
  o.status = status;
  o.execution_count = 3;
  return o;
}

// A 1x1 PNG, as the kernel sends it (base64).
constexpr const char* kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
    "==";

CheckedImage Png() { return CheckedImage{kPng, 1, 1, 70}; }

TEST(NotebookTest, NewNotebookIsNbformat45WithAPythonKernelAndTheSession) {
  const json nb = notebook::NewNotebook("nb");
  EXPECT_EQ(nb["nbformat"], 4);
  EXPECT_EQ(nb["nbformat_minor"], 5);
  EXPECT_EQ(nb["metadata"]["kernelspec"]["name"], "python3");
  EXPECT_EQ(nb["metadata"]["language_info"]["name"], "python");
  EXPECT_EQ(nb["metadata"]["mcp-executor"]["session"], "nb");
  EXPECT_TRUE(nb["cells"].is_array() && nb["cells"].empty());
}

TEST(NotebookTest, CodeCellCarriesSourceStreamsResultAndCount) {
  ExecOutcome o = Outcome();
  o.out.full.head = "a\nb\n";
  o.err.full.head = "warn";
  o.result = "42";
  const json cell = notebook::CodeCell("x = 1\nx", o, true);
  EXPECT_EQ(cell["cell_type"], "code");
  EXPECT_EQ(cell["execution_count"], 3);
  EXPECT_EQ(cell["source"], json({"x = 1\n", "x"}));
  const json& out = cell["outputs"];
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0],
            json({{"output_type", "stream"}, {"name", "stdout"}, {"text", {"a\n", "b\n"}}}));
  EXPECT_EQ(out[1]["name"], "stderr");
  EXPECT_EQ(out[1]["text"], json({"warn"}));
  EXPECT_EQ(out[2]["output_type"], "execute_result");
  EXPECT_EQ(out[2]["execution_count"], 3);
  EXPECT_EQ(out[2]["data"]["text/plain"], json({"42"}));
  EXPECT_EQ(cell["metadata"]["mcp-executor"]["status"], "ok");
}

TEST(NotebookTest, ImagesAreDisplayDataOrANoteWhenNotKept) {
  ExecOutcome o = Outcome();
  o.images = {Png()};
  const json kept = notebook::CodeCell("plot()", o, true);
  ASSERT_EQ(kept["outputs"].size(), 1u);
  EXPECT_EQ(kept["outputs"][0]["output_type"], "display_data");
  EXPECT_EQ(kept["outputs"][0]["data"]["image/png"], kPng);
  const json lean = notebook::CodeCell("plot()", o, false);
  ASSERT_EQ(lean["outputs"].size(), 1u);
  EXPECT_FALSE(lean["outputs"][0]["data"].contains("image/png"));
  EXPECT_THAT(lean["outputs"][0]["data"]["text/plain"][0].get<std::string>(),
              HasSubstr("size cap"));
}

TEST(NotebookTest, ErrorBecomesAnErrorOutputWithTracebackLines) {
  ExecOutcome o = Outcome(ExecStatus::kError);
  o.error = ErrorInfo{"ZeroDivisionError", "division by zero",
                      "Traceback (most recent call last):\n  line 1\nZeroDivisionError: x\n"};
  const json cell = notebook::CodeCell("1/0", o, true);
  ASSERT_EQ(cell["outputs"].size(), 1u);
  const json& err = cell["outputs"][0];
  EXPECT_EQ(err["output_type"], "error");
  EXPECT_EQ(err["ename"], "ZeroDivisionError");
  EXPECT_EQ(err["evalue"], "division by zero");
  EXPECT_EQ(err["traceback"],
            json({"Traceback (most recent call last):", "  line 1", "ZeroDivisionError: x"}));
  o.error->traceback.clear();
  EXPECT_EQ(notebook::CodeCell("1/0", o, true)["outputs"][0]["traceback"],
            json({"ZeroDivisionError: division by zero"}));
}

TEST(NotebookTest, TimeoutCancelAndKillAddAStderrNote) {
  ExecOutcome t = Outcome(ExecStatus::kTimeout);
  t.timeout_s = 2.5;
  const json tc = notebook::CodeCell("sleep()", t, true);
  ASSERT_EQ(tc["outputs"].size(), 1u);
  EXPECT_EQ(tc["outputs"][0]["name"], "stderr");
  EXPECT_THAT(tc["outputs"][0]["text"][0].get<std::string>(), HasSubstr("timeout"));
  EXPECT_THAT(tc["outputs"][0]["text"][0].get<std::string>(), HasSubstr("2.5 s"));
  EXPECT_THAT(
      notebook::CodeCell("x", Outcome(ExecStatus::kCancelled), true)["outputs"][0]["text"][0]
          .get<std::string>(),
      HasSubstr("cancelled"));
  ExecOutcome k = Outcome(ExecStatus::kKilled);
  k.kill_reason = "out of memory";
  k.notes = {"a note"};
  k.saved_files = {".mcp-executor/outputs/nb-3-stdout.txt"};
  const json kc = notebook::CodeCell("x", k, true);
  ASSERT_EQ(kc["outputs"].size(), 1u);
  EXPECT_EQ(kc["outputs"][0]["text"],
            json({"[note] a note\n", "[saved] .mcp-executor/outputs/nb-3-stdout.txt\n",
                  "[status] killed: out of memory; the kernel's state was lost\n"}));
}

TEST(NotebookTest, AppendCellGivesEachCellAnIdNoOtherHas) {
  json nb = notebook::NewNotebook("nb");
  nb["cells"].push_back({{"cell_type", "markdown"},
                         {"id", "cell-2"},
                         {"metadata", json::object()},
                         {"source", json::array()}});
  notebook::AppendCell(nb, notebook::MarkdownCell("a"));
  notebook::AppendCell(nb, notebook::MarkdownCell("b"));
  ASSERT_EQ(nb["cells"].size(), 3u);
  EXPECT_EQ(nb["cells"][1]["id"], "cell-3");
  EXPECT_EQ(nb["cells"][2]["id"], "cell-4");
}

TEST(NotebookTest, StateLostMarkerIsRecognised) {
  json nb = notebook::NewNotebook("nb");
  EXPECT_FALSE(notebook::EndsWithStateLost(nb));
  notebook::AppendCell(nb, notebook::MarkdownCell("gone", notebook::kStateLostKind));
  EXPECT_TRUE(notebook::EndsWithStateLost(nb));
  notebook::AppendCell(nb, notebook::MarkdownCell("other"));
  EXPECT_FALSE(notebook::EndsWithStateLost(nb));
  nb["cells"].back()["metadata"] = {{"mcp-executor", {{"kind", 7}}}};  // odd, never a throw
  EXPECT_FALSE(notebook::EndsWithStateLost(nb));
}

TEST(NotebookTest, ParseRecordAcceptsOnlyThisSessionsNotebook) {
  const std::string ours = notebook::Serialize(notebook::NewNotebook("nb"));
  EXPECT_TRUE(notebook::ParseRecord(ours, "nb").ok());
  EXPECT_THAT(notebook::ParseRecord(ours, "other").status().message(), HasSubstr("session"));
  EXPECT_FALSE(notebook::ParseRecord("{not json", "nb").ok());
  EXPECT_FALSE(notebook::ParseRecord("[]", "nb").ok());
  json old = notebook::NewNotebook("nb");
  old["nbformat_minor"] = 4;
  EXPECT_FALSE(notebook::ParseRecord(old.dump(), "nb").ok());
  json bad_cells = notebook::NewNotebook("nb");
  bad_cells["cells"] = json::array({1});
  EXPECT_FALSE(notebook::ParseRecord(bad_cells.dump(), "nb").ok());
  json users = notebook::NewNotebook("nb");
  users["metadata"].erase("mcp-executor");
  EXPECT_FALSE(notebook::ParseRecord(users.dump(), "nb").ok());
}

TEST(NotebookTest, SerializeReplacesInvalidUtf8InsteadOfThrowing) {
  json nb = notebook::NewNotebook("nb");
  ExecOutcome o = Outcome();
  o.out.full.head = "bad \xff byte\n";
  notebook::AppendCell(nb, notebook::CodeCell("print()", o, true));
  std::string text;
  EXPECT_NO_THROW(text = notebook::Serialize(nb));
  EXPECT_THAT(text, HasSubstr("bad \xef\xbf\xbd byte"));
}

class NotebookRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mcpx-notebook-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    auto ws = workspace::Workspace::Open((base_ / "ws").string());
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = *ws;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  fs::path Path(const std::string& name) { return base_ / "ws" / kNotebooksDir / name; }
  std::string ReadText(const std::string& name) {
    std::ifstream in(Path(name), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  json ReadNb(const std::string& name) { return json::parse(ReadText(name)); }
  void WriteText(const std::string& name, const std::string& text) {
    fs::create_directories(Path(name).parent_path());
    std::ofstream(Path(name), std::ios::binary) << text;
  }
  static void Run(NotebookRecorder& r, const std::string& session, const std::string& code,
                  ExecOutcome o = Outcome()) {
    o.session = session;
    r.Started(session, code);
    r.Record(o);
  }

  fs::path base_;
  std::shared_ptr<workspace::Workspace> ws_;
};

TEST_F(NotebookRecorderTest, EachCellRewritesTheSessionsFile) {
  NotebookRecorder r(nullptr, ws_, nullptr);
  Run(r, "nb", "print(1)");
  EXPECT_EQ(r.PathOf("nb"), ".mcp-executor/notebooks/nb.ipynb");
  EXPECT_EQ(ReadNb("nb.ipynb")["cells"].size(), 1u);
  Run(r, "nb", "print(2)");
  const json nb = ReadNb("nb.ipynb");
  ASSERT_EQ(nb["cells"].size(), 2u);
  EXPECT_EQ(nb["cells"][1]["source"], json({"print(2)"}));
  Run(r, "other", "x");
  EXPECT_TRUE(fs::exists(Path("other.ipynb")));
}

TEST_F(NotebookRecorderTest, StateLostAddsAMarkdownCellAndAnEndedSessionReopensTheFile) {
  NotebookRecorder r(nullptr, ws_, nullptr);
  r.StateLost("nb", "nothing open: ignored");
  EXPECT_FALSE(fs::exists(Path("nb.ipynb")));
  Run(r, "nb", "a");
  r.StateLost("nb", "the session was reset with reset_session", true);
  EXPECT_EQ(r.PathOf("nb"), "");
  json nb = ReadNb("nb.ipynb");
  ASSERT_EQ(nb["cells"].size(), 2u);
  EXPECT_EQ(nb["cells"][1]["cell_type"], "markdown");
  EXPECT_THAT(nb["cells"][1]["source"][0].get<std::string>(), HasSubstr("reset_session"));
  // The next cell appends to the same file, without a second state-lost note.
  Run(r, "nb", "b");
  nb = ReadNb("nb.ipynb");
  ASSERT_EQ(nb["cells"].size(), 3u);
  EXPECT_EQ(nb["cells"][2]["source"], json({"b"}));
}

TEST_F(NotebookRecorderTest, ANewServerAppendsToItsSessionsRecordWithANote) {
  {
    NotebookRecorder first(nullptr, ws_, nullptr);
    Run(first, "nb", "a");
  }
  NotebookRecorder second(nullptr, ws_, nullptr);
  Run(second, "nb", "b");
  const json nb = ReadNb("nb.ipynb");
  ASSERT_EQ(nb["cells"].size(), 3u);
  EXPECT_THAT(nb["cells"][1]["source"][0].get<std::string>(), HasSubstr("server was restarted"));
  EXPECT_EQ(nb["cells"][2]["source"], json({"b"}));
  EXPECT_NE(nb["cells"][0]["id"], nb["cells"][2]["id"]);
}

TEST_F(NotebookRecorderTest, AFileThatIsNotThisSessionsRecordIsLeftAlone) {
  WriteText("nb.ipynb", "my own notes, not JSON");
  NotebookRecorder r(nullptr, ws_, nullptr);
  Run(r, "nb", "a");
  EXPECT_EQ(ReadText("nb.ipynb"), "my own notes, not JSON");
  EXPECT_EQ(r.PathOf("nb"), ".mcp-executor/notebooks/nb-2.ipynb");
  EXPECT_EQ(ReadNb("nb-2.ipynb")["cells"].size(), 1u);
  // Session "nb-2" has a name of that series: it does not append to session nb's file.
  Run(r, "nb-2", "b");
  EXPECT_EQ(r.PathOf("nb-2"), ".mcp-executor/notebooks/nb-2-2.ipynb");
  EXPECT_EQ(ReadNb("nb-2.ipynb")["metadata"]["mcp-executor"]["session"], "nb");
}

TEST_F(NotebookRecorderTest, PastTheCapANewFileStartsAndOnlyAHugeCellLosesItsImages) {
  const uint64_t cap = 5120;
  NotebookRecorder r(nullptr, ws_, nullptr, cap);
  ExecOutcome o = Outcome();
  o.images = {CheckedImage{std::string(3000, 'A'), 10, 10, 2250}};
  Run(r, "nb", "plot()", o);  // fits with its image
  json nb = ReadNb("nb.ipynb");
  EXPECT_TRUE(nb["cells"][0]["outputs"][0]["data"].contains("image/png"));
  Run(r, "nb", "plot()", o);  // would pass the cap: the next file, image and all
  EXPECT_EQ(r.PathOf("nb"), ".mcp-executor/notebooks/nb-2.ipynb");
  EXPECT_EQ(ReadNb("nb.ipynb")["cells"].size(), 1u);
  EXPECT_LE(ReadText("nb.ipynb").size(), cap);
  nb = ReadNb("nb-2.ipynb");
  ASSERT_EQ(nb["cells"].size(), 2u);
  EXPECT_THAT(nb["cells"][0]["source"][0].get<std::string>(), HasSubstr("Continued from"));
  EXPECT_TRUE(nb["cells"][1]["outputs"][0]["data"].contains("image/png"));
  // A cell bigger than a whole file: a new file, with a note instead of the image.
  ExecOutcome huge = Outcome();
  huge.images = {CheckedImage{std::string(6000, 'A'), 10, 10, 4500}};
  Run(r, "nb", "plot()", huge);
  EXPECT_EQ(r.PathOf("nb"), ".mcp-executor/notebooks/nb-3.ipynb");
  nb = ReadNb("nb-3.ipynb");
  ASSERT_EQ(nb["cells"].size(), 2u);
  EXPECT_FALSE(nb["cells"][1]["outputs"][0]["data"].contains("image/png"));
  // A later server continues in nb-3, the newest file of the series.
  NotebookRecorder later(nullptr, ws_, nullptr, cap);
  Run(later, "nb", "x");
  EXPECT_EQ(later.PathOf("nb"), ".mcp-executor/notebooks/nb-3.ipynb");
}

}  // namespace
}  // namespace mcpx::session
