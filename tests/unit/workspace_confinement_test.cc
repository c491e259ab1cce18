// Confinement against a hostile workspace: every kind of planted link and special file, `..`
// tricks, and both resolvers (openat2 and the component walk used on kernels without it).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "util/unique_fd.h"
#include "workspace/workspace.h"

namespace mcpx::workspace {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

// A temp dir holding `outside/` (secrets) and `ws/` (the hostile workspace).
class HostileTree {
 public:
  HostileTree() {
    char tmpl[] = "/tmp/mcpx-ws-test-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    outside_ = base_ / "outside";
    ws_ = base_ / "ws";
    fs::create_directories(outside_);
    fs::create_directories(ws_ / "sub");
    Spit(outside_ / "secret.txt", "TOP SECRET\n");
    Spit(outside_ / "linked.txt", "outside original\n");
    Spit(ws_ / "a.txt", "alpha\n");
    Spit(ws_ / "sub" / "b.txt", "bravo\n");
    fs::create_symlink("/etc/passwd", ws_ / "passwd");
    fs::create_symlink("..", ws_ / "up");
    fs::create_symlink(outside_ / "secret.txt", ws_ / "abs_out");
    fs::create_symlink(ws_ / "a.txt", ws_ / "abs_in");  // absolute, even if it lands inside
    fs::create_symlink("loop2", ws_ / "loop1");
    fs::create_symlink("loop1", ws_ / "loop2");
    fs::create_symlink("nowhere", ws_ / "dangling");
    fs::create_symlink(outside_, ws_ / "dirout");
    fs::create_symlink("../outside/secret.txt", ws_ / "rel_out");
    fs::create_symlink("sub/b.txt", ws_ / "inlink");
    fs::create_symlink("sub", ws_ / "insubdir");
    EXPECT_EQ(::mkfifo((ws_ / "fifo").c_str(), 0644), 0);
    has_device_ = ::mknod((ws_ / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0;
    device_errno_ = errno;
    sock_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string sock_path = (ws_ / "sock").string();
    std::memcpy(addr.sun_path, sock_path.c_str(), sock_path.size() + 1);
    EXPECT_EQ(::bind(sock_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::link((outside_ / "linked.txt").c_str(), (ws_ / "hard").c_str()), 0);
  }
  ~HostileTree() { fs::remove_all(base_); }

  const fs::path& ws() const { return ws_; }
  const fs::path& outside() const { return outside_; }
  bool has_device() const { return has_device_; }
  int device_errno() const { return device_errno_; }

 private:
  fs::path base_, outside_, ws_;
  UniqueFd sock_;
  bool has_device_ = false;
  int device_errno_ = 0;
};

class ConfinementTest : public ::testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    // A FIFO that blocked would hang the test; the watchdog turns that into a failure.
    ::alarm(60);
    auto ws = Workspace::Open(tree_.ws().string(), OpenOptions{GetParam()});
    if (!ws.ok() && GetParam() == Resolver::kOpenat2) {
      GTEST_SKIP() << "openat2 unavailable here: " << ws.status().ToString();
    }
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = *ws;
    ASSERT_EQ(ws_->resolver(), GetParam());
  }
  void TearDown() override { ::alarm(0); }

  bool openat2() const { return GetParam() == Resolver::kOpenat2; }

  // Read must fail, with `code`, and must not return any outside content.
  void ExpectReadRefused(const std::string& path, Code code, const std::string& msg_part = "") {
    auto r = ws_->Read(path, 0, 1 << 20);
    ASSERT_FALSE(r.ok()) << "read '" << path << "' returned: " << r->data;
    EXPECT_EQ(r.status().code(), code) << path << ": " << r.status().ToString();
    if (!msg_part.empty()) {
      EXPECT_NE(r.status().message().find(msg_part), std::string::npos)
          << path << ": " << r.status().message();
    }
  }

  HostileTree tree_;
  std::shared_ptr<Workspace> ws_;
};

TEST_P(ConfinementTest, ReadsRegularFiles) {
  auto r = ws_->Read("a.txt", 0, 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->data, "alpha\n");
  EXPECT_EQ(r->size, 6u);
  EXPECT_EQ(ws_->Read("/workspace/sub/b.txt", 0, 100)->data, "bravo\n");
  EXPECT_EQ(ws_->Read("./sub//b.txt", 0, 100)->data, "bravo\n");
  EXPECT_EQ(ws_->Read("sub/../a.txt", 0, 100)->data, "alpha\n");
  EXPECT_EQ(ws_->Read(tree_.ws().string() + "/a.txt", 0, 100)->data, "alpha\n");
  EXPECT_EQ(ws_->Read("a.txt", 2, 2)->data, "ph");
  EXPECT_EQ(ws_->Read("a.txt", 100, 2)->data, "");
}

TEST_P(ConfinementTest, SymlinksOutAreRefused) {
  const std::string why = openat2() ? "escapes the workspace" : "is a symlink";
  ExpectReadRefused("passwd", Code::kPermissionDenied, why);
  ExpectReadRefused("abs_out", Code::kPermissionDenied, why);
  ExpectReadRefused("rel_out", Code::kPermissionDenied, why);
  ExpectReadRefused("dirout/secret.txt", Code::kPermissionDenied, why);
  ExpectReadRefused("up/outside/secret.txt", Code::kPermissionDenied, why);
  ExpectReadRefused("up/ws/a.txt", Code::kPermissionDenied, why);
  // Absolute links are judged on the host, where they leave the root fd, even if they land inside.
  ExpectReadRefused("abs_in", Code::kPermissionDenied, why);
  ExpectReadRefused("loop1", Code::kPermissionDenied);
  EXPECT_FALSE(ws_->Read("dangling", 0, 10).ok());
  EXPECT_FALSE(ws_->List("dirout").ok());
  EXPECT_FALSE(ws_->List("up").ok());
}

TEST_P(ConfinementTest, InsideSymlinksFollowOnlyWithOpenat2) {
  auto r = ws_->Read("inlink", 0, 100);
  auto l = ws_->List("insubdir");
  if (openat2()) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->data, "bravo\n");
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ASSERT_EQ(l->entries.size(), 1u);
    EXPECT_EQ(l->entries[0].path, "insubdir/b.txt");
  } else {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("'inlink' is a symlink"), std::string::npos)
        << r.status().message();
    EXPECT_FALSE(l.ok());
  }
}

TEST_P(ConfinementTest, DotDotTricksAreRefused) {
  for (const char* p :
       {"../outside/secret.txt", "a/../../outside/secret.txt", "/workspace/../etc/passwd",
        "/workspace/../outside/secret.txt", "/etc/passwd", "sub/../../outside/secret.txt"}) {
    ExpectReadRefused(p, Code::kInvalidArgument);
    EXPECT_FALSE(ws_->WriteFileAtomic(p, "x").ok()) << p;
    EXPECT_FALSE(ws_->List(p).ok()) << p;
  }
  ExpectReadRefused(std::string("a.txt\0/../../etc/passwd", 23), Code::kInvalidArgument, "NUL");
  EXPECT_EQ(Slurp(tree_.outside() / "secret.txt"), "TOP SECRET\n");
}

TEST_P(ConfinementTest, SpecialFilesAreRefusedWithoutBlocking) {
  ExpectReadRefused("fifo", Code::kInvalidArgument, "'fifo' is a FIFO, not a regular file");
  ExpectReadRefused("sock", Code::kInvalidArgument, "'sock' is a socket, not a regular file");
  ExpectReadRefused("sub", Code::kInvalidArgument, "is a directory");
  ExpectReadRefused(".", Code::kInvalidArgument, "is a directory");
  ExpectReadRefused("nope.txt", Code::kNotFound, "does not exist");
  ExpectReadRefused("a.txt/x", Code::kInvalidArgument, "not a directory");
  auto w = ws_->WriteFileAtomic("fifo", "x", {.append = true});
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("is a FIFO"), std::string::npos) << w.status().message();
  EXPECT_FALSE(ws_->WriteFileAtomic("fifo", "x").ok());
  EXPECT_FALSE(ws_->WriteFileAtomic("sock", "x").ok());
  EXPECT_FALSE(ws_->WriteFileAtomic("sub", "x").ok());
  EXPECT_FALSE(ws_->WriteFileAtomic(".", "x").ok());
  EXPECT_FALSE(ws_->WriteFileAtomic("a.txt/x", "x").ok());
  EXPECT_FALSE(ws_->List("a.txt").ok());
  EXPECT_FALSE(ws_->List("fifo").ok());
  // The FIFO is still a FIFO (not replaced).
  EXPECT_TRUE(fs::is_fifo(tree_.ws() / "fifo"));
}

TEST_P(ConfinementTest, DeviceNodesAreRefused) {
  if (!tree_.has_device()) {
    GTEST_SKIP() << "mknod of a char device failed (" << std::strerror(tree_.device_errno())
                 << "); needs root without a device cgroup restriction";
  }
  ExpectReadRefused("null", Code::kInvalidArgument, "'null' is a device node, not a regular file");
  EXPECT_FALSE(ws_->WriteFileAtomic("null", "x", {.append = true}).ok());
  EXPECT_FALSE(ws_->WriteFileAtomic("null", "x").ok());
}

TEST_P(ConfinementTest, WritesNeverFollowSymlinks) {
  for (const char* p : {"passwd", "abs_out", "rel_out", "inlink", "abs_in", "dangling", "loop1"}) {
    auto w = ws_->WriteFileAtomic(p, "pwned");
    ASSERT_FALSE(w.ok()) << p;
    EXPECT_EQ(w.status().code(), Code::kPermissionDenied) << p << ": " << w.status().ToString();
    EXPECT_TRUE(fs::is_symlink(tree_.ws() / p)) << p;
  }
  for (const char* p :
       {"dirout/new.txt", "up/outside/new.txt", "insubdir/new.txt", "dirout/deeper/new.txt"}) {
    auto w = ws_->WriteFileAtomic(p, "pwned");
    ASSERT_FALSE(w.ok()) << p;
    EXPECT_NE(w.status().message().find("is a symlink"), std::string::npos) << w.status().message();
  }
  EXPECT_FALSE(fs::exists(tree_.outside() / "new.txt"));
  EXPECT_FALSE(fs::exists(tree_.outside() / "deeper"));
  EXPECT_FALSE(fs::exists(tree_.ws() / "sub" / "new.txt"));
  EXPECT_EQ(Slurp(tree_.outside() / "secret.txt"), "TOP SECRET\n");
  EXPECT_EQ(Slurp(tree_.ws() / "sub" / "b.txt"), "bravo\n");
}

// Decision: a hard link is readable (the sandbox cannot make one to a file it cannot see), and a
// write replaces the name with a new inode, so the outside file is never written through.
TEST_P(ConfinementTest, HardLinkIsNeverWrittenThrough) {
  ASSERT_EQ(fs::hard_link_count(tree_.ws() / "hard"), 2u);
  EXPECT_EQ(ws_->Read("hard", 0, 100)->data, "outside original\n");
  auto w = ws_->WriteFileAtomic("hard", "replaced\n");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(Slurp(tree_.outside() / "linked.txt"), "outside original\n");
  EXPECT_EQ(Slurp(tree_.ws() / "hard"), "replaced\n");
  EXPECT_EQ(fs::hard_link_count(tree_.ws() / "hard"), 1u);
  EXPECT_EQ(fs::hard_link_count(tree_.outside() / "linked.txt"), 1u);
  // Append copies, so it does not write through either.
  // An append writes in place, so it refuses a file with other names.
  ASSERT_EQ(::link((tree_.outside() / "linked.txt").c_str(), (tree_.ws() / "hard2").c_str()), 0);
  auto ap = ws_->WriteFileAtomic("hard2", "more\n", {.append = true});
  ASSERT_FALSE(ap.ok());
  EXPECT_EQ(ap.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(ap.status().message().find("'hard2' has 2 hard links"), std::string::npos)
      << ap.status().message();
  EXPECT_EQ(Slurp(tree_.outside() / "linked.txt"), "outside original\n");
  EXPECT_EQ(Slurp(tree_.ws() / "hard2"), "outside original\n");
}

TEST_P(ConfinementTest, WriteCreatesParentsAndIsAtomic) {
  auto w = ws_->WriteFileAtomic("/workspace/.mcp-executor/outputs/run1/out.txt", "data");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->path, ".mcp-executor/outputs/run1/out.txt");
  EXPECT_TRUE(w->created);
  EXPECT_EQ(w->size, 4u);
  EXPECT_EQ(Slurp(tree_.ws() / ".mcp-executor/outputs/run1/out.txt"), "data");

  const fs::path a = tree_.ws() / "a.txt";
  fs::permissions(a, fs::perms(0640));
  auto o = ws_->WriteFileAtomic("a.txt", "new alpha");
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->created);
  EXPECT_EQ(Slurp(a), "new alpha");
  EXPECT_EQ(fs::status(a).permissions(), fs::perms(0640));  // mode kept

  auto ap = ws_->WriteFileAtomic("a.txt", "+tail", {.append = true});
  ASSERT_TRUE(ap.ok());
  EXPECT_EQ(ap->bytes_written, 5u);
  EXPECT_EQ(ap->size, 14u);
  EXPECT_EQ(Slurp(a), "new alpha+tail");

  auto nop = ws_->WriteFileAtomic("fresh/new.txt", "x", {.create_parents = false});
  EXPECT_EQ(nop.status().code(), Code::kNotFound);

  // No temporary files left behind, after successes or refusals.
  for (const auto& e : fs::recursive_directory_iterator(tree_.ws())) {
    EXPECT_EQ(e.path().filename().string().find(".mcpx-"), std::string::npos) << e.path();
  }
}

TEST_P(ConfinementTest, HostileNamesRoundTrip) {
  for (const std::string name :
       {"with space.txt", "new\nline.txt", "ünïcödé ✓.txt", "-rf", " leading", "tab\there"}) {
    ASSERT_TRUE(ws_->WriteFileAtomic("names/" + name, name).ok()) << name;
    EXPECT_EQ(ws_->Read("names/" + name, 0, 100)->data, name);
  }
  auto l = ws_->List("names");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->entries.size(), 6u);
  EXPECT_TRUE(std::is_sorted(l->entries.begin(), l->entries.end(),
                             [](const Entry& x, const Entry& y) { return x.path < y.path; }));
}

TEST_P(ConfinementTest, ListReportsTypesAndNeverFollows) {
  auto l = ws_->List(".", {.recursive = true});
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  std::map<std::string, Entry> by_path;
  for (const auto& e : l->entries) by_path[e.path] = e;
  EXPECT_EQ(by_path.at("a.txt").type, FileType::kFile);
  EXPECT_EQ(by_path.at("a.txt").size, 6u);
  EXPECT_EQ(by_path.at("sub").type, FileType::kDirectory);
  EXPECT_EQ(by_path.at("sub/b.txt").type, FileType::kFile);
  EXPECT_EQ(by_path.at("passwd").type, FileType::kSymlink);
  EXPECT_EQ(by_path.at("passwd").target, "/etc/passwd");
  EXPECT_EQ(by_path.at("dirout").type, FileType::kSymlink);
  EXPECT_EQ(by_path.at("up").type, FileType::kSymlink);
  EXPECT_EQ(by_path.at("fifo").type, FileType::kFifo);
  EXPECT_EQ(by_path.at("sock").type, FileType::kSocket);
  if (tree_.has_device()) {
    EXPECT_EQ(by_path.at("null").type, FileType::kDevice);
  }
  for (const auto& [path, e] : by_path) {
    EXPECT_FALSE(path.starts_with("dirout/") || path.starts_with("up/") ||
                 path.starts_with("insubdir/"))
        << "followed a symlink: " << path;
  }
  EXPECT_FALSE(l->truncated);
  EXPECT_TRUE(std::is_sorted(l->entries.begin(), l->entries.end(),
                             [](const Entry& x, const Entry& y) { return x.path < y.path; }));
  auto top = ws_->List("/workspace");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->path, ".");
  EXPECT_EQ(top->entries.size(), by_path.size() - 1);  // all but sub/b.txt
}

TEST_P(ConfinementTest, ListCapsEntries) {
  fs::create_directories(tree_.ws() / "big");
  for (int i = 0; i < 10000; ++i) {
    UniqueFd fd(::open((tree_.ws() / "big" / ("f" + std::to_string(i))).c_str(),
                       O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
  }
  auto big = ws_->List("big");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->entries.size(), 10000u);
  EXPECT_FALSE(big->truncated);
  EXPECT_EQ(big->entries.front().path, "big/f0");

  auto all = ws_->List(".", {.recursive = true, .max_entries = 10000});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->entries.size(), 10000u);
  EXPECT_TRUE(all->truncated);
}

// A folder larger than the cap gives its first names in byte order (not those getdents happens
// to return first), however the cap falls between folders of a recursive walk.
TEST_P(ConfinementTest, CappedListingKeepsTheFirstNamesInOrder) {
  fs::create_directories(tree_.ws() / "many" / "a-sub");
  for (int i = 0; i < 500; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "f%03d", (i * 7919) % 500);  // created out of order
    UniqueFd fd(::open((tree_.ws() / "many" / name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
  }
  for (const char* name : {"x", "y"}) {
    UniqueFd fd(::open((tree_.ws() / "many" / "a-sub" / name).c_str(),
                       O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
  }
  auto l = ws_->List("many", {.max_entries = 20});
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->entries.size(), 20u);
  EXPECT_TRUE(l->truncated);
  EXPECT_EQ(l->entries.front().path, "many/a-sub");
  EXPECT_EQ(l->entries[1].path, "many/f000");
  EXPECT_EQ(l->entries.back().path, "many/f018");

  // Recursive: the folder's own first names, then the subfolder with what is left.
  auto r = ws_->List("many", {.recursive = true, .max_entries = 502});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->entries.size(), 502u);
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->entries[1].path, "many/a-sub/x");
  auto exact = ws_->List("many", {.recursive = true, .max_entries = 503});
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->entries.size(), 503u);
  EXPECT_FALSE(exact->truncated);
}

TEST_P(ConfinementTest, DeepTreesStopAtMaxDepth) {
  fs::path p = tree_.ws();
  for (int i = 0; i < 10; ++i) p /= "d";
  fs::create_directories(p);
  auto l = ws_->List(".", {.recursive = true, .max_depth = 3});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->skipped_deep, 1u);
  for (const auto& e : l->entries) EXPECT_LE(std::count(e.path.begin(), e.path.end(), '/'), 3);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, ConfinementTest,
                         ::testing::Values(Resolver::kOpenat2, Resolver::kWalk),
                         [](const ::testing::TestParamInfo<Resolver>& param_info) {
                           return param_info.param == Resolver::kOpenat2 ? "Openat2" : "Walk";
                         });

TEST(WorkspaceOpen, CreatesMissingFolderAndReportsRoot) {
  char tmpl[] = "/tmp/mcpx-ws-open-XXXXXX";
  const fs::path base = ::mkdtemp(tmpl);
  auto ws = Workspace::Open((base / "new").string());
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  EXPECT_EQ((*ws)->root(), fs::canonical(base / "new").string());
  EXPECT_TRUE(fs::is_directory(base / "new"));
  Spit(base / "file", "x");
  EXPECT_FALSE(Workspace::Open((base / "file").string()).ok());
  EXPECT_FALSE(Workspace::Open((base / "a" / "b").string()).ok());
  fs::remove_all(base);
}

}  // namespace
}  // namespace mcpx::workspace
