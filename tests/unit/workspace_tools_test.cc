// read_file / write_file / list_files through the Tool interface, and the resources provider:
// result shapes, paging, caps, errors, and that structuredContent always matches outputSchema.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tools/file_tools.h"
#include "tools/workspace_resources.h"
#include "workspace/encoding.h"
#include "workspace/workspace.h"

namespace mcpx::tools {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mcp::Tool;
using mcp::ToolCall;

class FakeCall : public ToolCall {
 public:
  explicit FakeCall(json args) : args_(std::move(args)) {}
  const json& arguments() const override { return args_; }
  void Finish(json result) override {
    result_ = std::move(result);
    finished_ = true;
  }
  bool finished() const override { return finished_; }
  bool wants_progress() const override { return false; }
  void Progress(double, std::optional<double>, std::string) override {}
  void OnCancel(std::function<void()>) override {}
  bool cancelled() const override { return false; }
  void Log(std::string_view, std::string) override {}
  const json& result() const { return result_; }

 private:
  json args_;
  json result_;
  bool finished_ = false;
};

// The subset of JSON Schema our schemas use: type (string or list), properties, required,
// additionalProperties false, enum, items. Returns "" when `v` matches, else why not.
std::string Validate(const json& schema, const json& v, const std::string& at = "$") {
  if (schema.contains("type")) {
    auto types = schema["type"].is_array() ? schema["type"] : json::array({schema["type"]});
    bool ok = false;
    for (const auto& t : types) {
      const auto s = t.get<std::string>();
      ok = ok || (s == "object" && v.is_object()) || (s == "array" && v.is_array()) ||
           (s == "string" && v.is_string()) || (s == "boolean" && v.is_boolean()) ||
           (s == "integer" && v.is_number_integer()) || (s == "number" && v.is_number()) ||
           (s == "null" && v.is_null());
    }
    if (!ok) return at + ": " + v.dump() + " is not " + schema["type"].dump();
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) return at + ": " + v.dump() + " not in enum";
  }
  if (v.is_object() && schema.contains("properties")) {
    for (const auto& r : schema.value("required", json::array())) {
      if (!v.contains(r.get<std::string>())) return at + ": missing " + r.dump();
    }
    for (const auto& [k, sub] : v.items()) {
      if (!schema["properties"].contains(k)) {
        if (schema.value("additionalProperties", true) == false) return at + ": extra key " + k;
        continue;
      }
      auto err = Validate(schema["properties"][k], sub, at + "." + k);
      if (!err.empty()) return err;
    }
  }
  if (v.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < v.size(); ++i) {
      auto err = Validate(schema["items"], v[i], at + "[" + std::to_string(i) + "]");
      if (!err.empty()) return err;
    }
  }
  return "";
}

class FileToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mcpx-tools-test-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    auto ws = workspace::Workspace::Open((base_ / "ws").string());
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = *ws;
    AddFileTools(registry_, ws_);
  }
  void TearDown() override { fs::remove_all(base_); }

  void Put(const std::string& rel, const std::string& data) {
    fs::create_directories((base_ / "ws" / rel).parent_path());
    std::ofstream(base_ / "ws" / rel, std::ios::binary) << data;
  }
  std::string Get(const std::string& rel) {
    std::ifstream in(base_ / "ws" / rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Calls a tool; checks it finished and that a successful result matches the outputSchema.
  json Call(const std::string& tool, json args) {
    Tool* t = registry_.Find(tool);
    EXPECT_NE(t, nullptr) << tool;
    if (t == nullptr) return {};
    auto call = std::make_shared<FakeCall>(std::move(args));
    t->Call(call);
    EXPECT_TRUE(call->finished());
    const json& r = call->result();
    EXPECT_TRUE(r.contains("content") && r["content"].is_array()) << r.dump();
    if (!r.value("isError", false)) {
      const json def = t->Definition();
      EXPECT_TRUE(r.contains("structuredContent")) << r.dump();
      const std::string err = Validate(def["outputSchema"], r["structuredContent"]);
      EXPECT_EQ(err, "") << r["structuredContent"].dump();
    }
    return r;
  }
  static bool IsError(const json& r) { return r.value("isError", false); }
  static std::string Text(const json& r, size_t i = 0) {
    return r["content"].size() > i ? r["content"][i].value("text", "") : "";
  }

  fs::path base_;
  std::shared_ptr<workspace::Workspace> ws_;
  mcp::ToolRegistry registry_;
};

TEST_F(FileToolsTest, DefinitionsAreComplete) {
  ASSERT_EQ(registry_.tools().size(), 3u);
  for (const char* name : {"read_file", "write_file", "list_files"}) {
    Tool* t = registry_.Find(name);
    ASSERT_NE(t, nullptr) << name;
    const json d = t->Definition();
    EXPECT_EQ(d["name"], name);
    EXPECT_TRUE(d["title"].is_string());
    EXPECT_TRUE(d["description"].is_string());
    EXPECT_EQ(d["inputSchema"]["type"], "object");
    EXPECT_EQ(d["inputSchema"]["additionalProperties"], false);
    for (const auto& [k, p] : d["inputSchema"]["properties"].items()) {
      EXPECT_TRUE(p.contains("type") && p.contains("description")) << name << "." << k;
    }
    EXPECT_EQ(d["outputSchema"]["type"], "object");
    EXPECT_EQ(d["annotations"]["openWorldHint"], false);
  }
  EXPECT_EQ(registry_.Find("read_file")->Definition()["annotations"]["readOnlyHint"], true);
  EXPECT_EQ(registry_.Find("list_files")->Definition()["annotations"]["readOnlyHint"], true);
  const json w = registry_.Find("write_file")->Definition()["annotations"];
  EXPECT_EQ(w["readOnlyHint"], false);
  EXPECT_EQ(w["destructiveHint"], true);
}

TEST_F(FileToolsTest, WriteThenReadUtf8AndBase64) {
  json r = Call("write_file", {{"path", "notes/é.txt"}, {"content", "héllo\n"}});
  ASSERT_FALSE(IsError(r)) << r.dump();
  EXPECT_EQ(r["structuredContent"]["bytes_written"], 7);
  EXPECT_EQ(r["structuredContent"]["created"], true);
  r = Call("read_file", {{"path", "/workspace/notes/é.txt"}});
  ASSERT_FALSE(IsError(r)) << r.dump();
  EXPECT_EQ(Text(r), "héllo\n");
  EXPECT_EQ(r["content"].size(), 1u);  // no range note for a whole small file
  EXPECT_EQ(r["structuredContent"]["kind"], "text");
  EXPECT_FALSE(r["structuredContent"].contains("next_offset"));

  const std::string bin("\x00\x01\xfe\xff", 4);
  r = Call("write_file",
           {{"path", "b.dat"}, {"content", workspace::Base64Encode(bin)}, {"encoding", "base64"}});
  ASSERT_FALSE(IsError(r)) << r.dump();
  EXPECT_EQ(Get("b.dat"), bin);
  r = Call("read_file", {{"path", "b.dat"}});
  ASSERT_FALSE(IsError(r)) << r.dump();
  EXPECT_EQ(r["structuredContent"]["kind"], "binary");
  const json& res = r["content"][1];
  EXPECT_EQ(res["type"], "resource");
  EXPECT_EQ(res["resource"]["uri"], "file:///workspace/b.dat");
  EXPECT_EQ(res["resource"]["mimeType"], "application/octet-stream");
  EXPECT_EQ(*workspace::Base64Decode(res["resource"]["blob"].get<std::string>()), bin);

  r = Call("write_file",
           {{"path", "b.dat"}, {"content", "AQ"}, {"encoding", "base64"}, {"append", true}});
  ASSERT_FALSE(IsError(r)) << r.dump();
  EXPECT_EQ(r["structuredContent"]["size"], 5);
  EXPECT_EQ(Get("b.dat"), bin + "\x01");
}

// Finding 7 of issue 8: an append used to copy the whole file (and fsync it) in the event loop, so
// a sparse file the sandbox made cheaply cost the server real blocks and seconds.
TEST_F(FileToolsTest, AppendToAPlantedSparseFileWritesOnlyTheNewBytes) {
  constexpr off_t kSparse = off_t{512} << 20;
  const fs::path big = base_ / "ws" / "sparse.bin";
  std::ofstream(big).put('s');
  ASSERT_EQ(::truncate(big.c_str(), kSparse), 0);
  struct stat before {};
  ASSERT_EQ(::stat(big.c_str(), &before), 0);

  json r = Call("write_file", {{"path", "sparse.bin"}, {"content", "!"}, {"append", true}});
  ASSERT_FALSE(IsError(r)) << r.dump();
  EXPECT_EQ(r["structuredContent"]["size"], kSparse + 1);
  EXPECT_EQ(r["structuredContent"]["bytes_written"], 1);
  struct stat after {};
  ASSERT_EQ(::stat(big.c_str(), &after), 0);
  EXPECT_EQ(after.st_size, kSparse + 1);
  EXPECT_EQ(after.st_ino, before.st_ino) << "appended by copying into a new file";
  EXPECT_LT(after.st_blocks * 512, 1 << 20) << "the holes were filled with real blocks";
  std::ifstream in(big, std::ios::binary);
  char first = 0, last = 0;
  in.get(first);
  in.seekg(kSparse);
  in.get(last);
  EXPECT_EQ(first, 's');
  EXPECT_EQ(last, '!');
}

// In place, a failed write must not leave part of the new bytes behind: RLIMIT_FSIZE lets 10 of
// the 100 bytes land before EFBIG.
TEST_F(FileToolsTest, AppendThatFailsHalfwayLeavesTheFileAsItWas) {
  Put("log.txt", "line one\n");
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 1000) GTEST_SKIP() << "RLIMIT_FSIZE";
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit small = saved;
  small.rlim_cur = 9 + 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  json r = Call("write_file",
                {{"path", "log.txt"}, {"content", std::string(100, 'x')}, {"append", true}});
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &old_action, nullptr);
  ASSERT_TRUE(IsError(r)) << r.dump();
  EXPECT_NE(Text(r).find("cannot write 'log.txt'"), std::string::npos) << Text(r);
  EXPECT_EQ(Get("log.txt"), "line one\n");
}

TEST_F(FileToolsTest, WriteErrorsAreClear) {
  json r = Call("write_file", {{"path", "x"}, {"content", "ab$c"}, {"encoding", "base64"}});
  ASSERT_TRUE(IsError(r));
  EXPECT_NE(Text(r).find("'$' at position 2"), std::string::npos) << Text(r);
  EXPECT_FALSE(fs::exists(base_ / "ws" / "x"));

  r = Call("write_file", {{"path", "x"}, {"content", "a"}, {"encoding", "latin-1"}});
  ASSERT_TRUE(IsError(r));
  EXPECT_NE(Text(r).find("'encoding'"), std::string::npos) << Text(r);

  r = Call("write_file", {{"path", "x"}, {"content", 5}});
  ASSERT_TRUE(IsError(r));
  EXPECT_NE(Text(r).find("'content' must be a string"), std::string::npos) << Text(r);

  r = Call("write_file", {{"path", "x"}});
  EXPECT_NE(Text(r).find("missing required argument 'content'"), std::string::npos) << Text(r);
  r = Call("write_file", {{"path", "x"}, {"content", "a"}, {"mode", "w"}});
  EXPECT_NE(Text(r).find("unknown argument 'mode'"), std::string::npos) << Text(r);

  r = Call("write_file", {{"path", "../x"}, {"content", "a"}});
  ASSERT_TRUE(IsError(r));
  EXPECT_NE(Text(r).find("escapes the workspace"), std::string::npos) << Text(r);

  r = Call("write_file", {{"path", "big"}, {"content", std::string(kWriteCap + 1, 'a')}});
  ASSERT_TRUE(IsError(r));
  EXPECT_NE(Text(r).find("16 MiB"), std::string::npos) << Text(r);
  EXPECT_FALSE(fs::exists(base_ / "ws" / "big"));
}

TEST_F(FileToolsTest, ReadPagesTextWithoutSplittingCharacters) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "é€";  // 5 bytes per pair
  Put("big.txt", text);
  uint64_t offset = 0;
  std::string back;
  int pages = 0;
  for (;;) {
    json r =
        Call("read_file", {{"path", "big.txt"}, {"offset", offset}, {"limit", uint64_t{100001}}});
    ASSERT_FALSE(IsError(r)) << Text(r);
    const json& s = r["structuredContent"];
    ASSERT_EQ(s["kind"], "text");
    back += Text(r);
    ++pages;
    if (!s.contains("next_offset")) break;
    EXPECT_NE(Text(r, 1).find("offset=" + std::to_string(s["next_offset"].get<uint64_t>())),
              std::string::npos)
        << Text(r, 1);
    EXPECT_EQ(s["truncated"], true);
    offset = s["next_offset"];
  }
  EXPECT_EQ(back, text);
  EXPECT_EQ(pages, 5);

  json r = Call("read_file", {{"path", "big.txt"}});
  // 262144 = 52428 pairs + "é" + 2 bytes of "€": the cut character is left for the next page.
  EXPECT_EQ(r["structuredContent"]["bytes"].get<uint64_t>(), kReadDefaultLimit - 2);
  r = Call("read_file", {{"path", "big.txt"}, {"offset", uint64_t{10000000}}});
  ASSERT_FALSE(IsError(r));
  EXPECT_NE(Text(r, 1).find("past the end"), std::string::npos) << Text(r, 1);
  r = Call("read_file", {{"path", "big.txt"}, {"limit", uint64_t{0}}});
  EXPECT_TRUE(IsError(r));
  r = Call("read_file", {{"path", "big.txt"}, {"offset", -1}});
  EXPECT_TRUE(IsError(r));
}

TEST_F(FileToolsTest, ImagesComeBackAsImageBlocks) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  png += std::string(100, 'x');
  Put("plot.png", png);
  Put("fake.png", "just text");
  json r = Call("read_file", {{"path", "plot.png"}});
  ASSERT_FALSE(IsError(r)) << r.dump();
  ASSERT_EQ(r["content"].size(), 2u);
  EXPECT_EQ(r["content"][1]["type"], "image");
  EXPECT_EQ(r["content"][1]["mimeType"], "image/png");
  EXPECT_EQ(*workspace::Base64Decode(r["content"][1]["data"].get<std::string>()), png);
  EXPECT_EQ(r["structuredContent"]["kind"], "image");

  r = Call("read_file", {{"path", "fake.png"}});  // the name does not make an image
  EXPECT_EQ(r["structuredContent"]["kind"], "text");

  r = Call("read_file", {{"path", "plot.png"}, {"offset", uint64_t{8}}, {"limit", uint64_t{8}}});
  EXPECT_EQ(r["structuredContent"]["kind"], "binary");
  EXPECT_EQ(r["content"][1]["resource"]["mimeType"], "image/png");

  Put("huge.png", png + std::string(kImageCap, 'x'));
  r = Call("read_file", {{"path", "huge.png"}});
  ASSERT_TRUE(IsError(r));
  EXPECT_NE(Text(r).find("cap for image replies"), std::string::npos) << Text(r);
}

TEST_F(FileToolsTest, ListFiles) {
  Put("a.txt", "aa");
  Put("d/b.txt", "bbb");
  fs::create_symlink("/etc", base_ / "ws" / "etc");
  Put("new\nline", "");
  json r = Call("list_files", json::object());
  ASSERT_FALSE(IsError(r)) << r.dump();
  const json& s = r["structuredContent"];
  EXPECT_EQ(s["path"], ".");
  EXPECT_EQ(s["count"], 4);
  EXPECT_EQ(s["entries"][0]["path"], "a.txt");
  EXPECT_EQ(s["entries"][0]["type"], "file");
  EXPECT_EQ(s["entries"][0]["size"], 2);
  EXPECT_EQ(s["entries"][1]["type"], "directory");
  EXPECT_EQ(s["entries"][2]["type"], "symlink");
  EXPECT_EQ(s["entries"][2]["target"], "/etc");
  EXPECT_EQ(s["entries"][3]["path"], "new\nline");
  EXPECT_NE(Text(r).find("new\\nline"), std::string::npos) << Text(r);  // one entry per line
  const std::string listing = Text(r);
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\n'), 5) << listing;

  r = Call("list_files", {{"path", "/workspace"}, {"recursive", true}});
  EXPECT_EQ(r["structuredContent"]["count"], 5);
  r = Call("list_files", {{"path", "etc"}});
  EXPECT_TRUE(IsError(r));
  r = Call("list_files", {{"path", "a.txt"}});
  EXPECT_TRUE(IsError(r));
  EXPECT_NE(Text(r).find("not a folder"), std::string::npos) << Text(r);
  r = Call("list_files", {{"recursive", "yes"}});
  EXPECT_NE(Text(r).find("'recursive' must be a boolean"), std::string::npos) << Text(r);
}

TEST_F(FileToolsTest, ListFilesTruncatesAtCap) {
  for (size_t i = 0; i <= kListCap; ++i) Put("many/" + std::to_string(i), "");
  json r = Call("list_files", {{"path", "many"}});
  EXPECT_EQ(r["structuredContent"]["count"], kListCap);
  EXPECT_EQ(r["structuredContent"]["truncated"], true);
  EXPECT_NE(Text(r).find("[truncated at 10000 entries"), std::string::npos);
}

TEST_F(FileToolsTest, ResourcesListPagesAndRead) {
  for (int i = 0; i < 250; ++i) Put("r/f" + std::to_string(1000 + i) + ".csv", "a,b\n");
  Put("sp ace/ü.bin", std::string("\x00\xff", 2));
  fs::create_symlink("/etc/passwd", base_ / "ws" / "pw");
  auto res = MakeWorkspaceResources(ws_);

  std::vector<std::string> uris;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    auto page = res->List(cursor);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LE((*page)["resources"].size(), kResourcesPageSize);
    for (const auto& r : (*page)["resources"]) uris.push_back(r["uri"]);
    cursor.reset();
    if (page->contains("nextCursor")) cursor = (*page)["nextCursor"].get<std::string>();
    ++pages;
  } while (cursor && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(uris.size(), 251u);  // regular files only: not the symlink, not folders
  EXPECT_EQ(uris.front(), "file:///workspace/r/f1000.csv");
  EXPECT_EQ(uris.back(), "file:///workspace/sp%20ace/%C3%BC.bin");
  EXPECT_EQ(res->List(std::string("bogus")).status().code(), Code::kInvalidArgument);

  auto text = res->Read("file:///workspace/r/f1000.csv");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ((*text)["contents"][0]["text"], "a,b\n");
  EXPECT_EQ((*text)["contents"][0]["mimeType"], "text/csv");
  auto blob = res->Read(uris.back());
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ((*blob)["contents"][0]["blob"], workspace::Base64Encode(std::string("\x00\xff", 2)));

  EXPECT_EQ(res->Read("file:///workspace/nope").status().code(), Code::kNotFound);
  for (const char* bad :
       {"file:///etc/passwd", "file:///workspace/../etc/passwd", "file:///workspace/%2e%2e/x",
        "file:///workspace//etc/passwd", "file:///workspace/pw", "file:///workspace/r",
        "file:///workspace/a%00b", "file:///workspace/a%zz", "http://x/y",
        "file:///workspace/r/f1000.csv?x"}) {
    auto r = res->Read(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad << ": " << r.status().ToString();
  }
}

}  // namespace
}  // namespace mcpx::tools
