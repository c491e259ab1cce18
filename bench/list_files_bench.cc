// Times recursive listing of a 10,000-file workspace: Workspace::List alone (both resolvers) and
// the list_files tool (listing + JSON result). Target: under 50 ms. Usage: list_files_bench [N]
// `list_files_bench N flat`: one folder of N entries listed with the default 10,000-entry cap,
// with the peak memory it took (a folder sandboxed code filled on purpose).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "mcp/tool.h"
#include "tools/file_tools.h"
#include "workspace/workspace.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class NullCall : public mcpx::mcp::ToolCall {
 public:
  const nlohmann::json& arguments() const override { return args_; }
  void Finish(nlohmann::json result) override { bytes_ = result.dump().size(); }
  bool finished() const override { return bytes_ > 0; }
  bool wants_progress() const override { return false; }
  void Progress(double, std::optional<double>, std::string) override {}
  void OnCancel(std::function<void()>) override {}
  bool cancelled() const override { return false; }
  void Log(std::string_view, std::string) override {}
  size_t bytes() const { return bytes_; }

 private:
  nlohmann::json args_ = {{"recursive", true}};
  size_t bytes_ = 0;
};

template <typename F>
void Measure(const char* what, int runs, F f) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%-40s p50 %7.2f ms   min %7.2f ms   max %7.2f ms  (%d runs)\n", what,
              ms[ms.size() / 2], ms.front(), ms.back(), runs);
}

long PeakRssKiB() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int FlatFolder(const fs::path& root, int n) {
  for (int f = 0; f < n; ++f) {
    const int fd = ::open((root / ("entry-" + std::to_string(f))).c_str(),
                          O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
  auto ws = mcpx::workspace::Workspace::Open(root.string(), {});
  if (!ws.ok()) {
    std::printf("cannot open the workspace: %s\n", ws.status().ToString().c_str());
    return 1;
  }
  const long before = PeakRssKiB();
  mcpx::workspace::Listing listing;
  Measure("Workspace::List of one folder, default cap", 5, [&] { listing = *(*ws)->List("."); });
  std::printf("  folder of %d entries: %zu listed, truncated %s; peak RSS grew %ld KiB\n", n,
              listing.entries.size(), listing.truncated ? "yes" : "no", PeakRssKiB() - before);
  fs::remove_all(root);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  char tmpl[] = "/tmp/mcpx-list-bench-XXXXXX";
  const fs::path root = ::mkdtemp(tmpl);
  if (argc > 2 && std::string(argv[2]) == "flat") return FlatFolder(root, n);
  // 100 folders of n/100 files, like a results tree.
  for (int d = 0; d < 100; ++d) {
    const fs::path dir = root / ("run" + std::to_string(d));
    fs::create_directories(dir);
    for (int f = 0; f < n / 100; ++f) {
      const int fd = ::open((dir / ("part-" + std::to_string(f) + ".csv")).c_str(),
                            O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
    }
  }
  std::printf("workspace %s: %d files in 100 folders\n", root.c_str(), n);

  for (auto resolver : {mcpx::workspace::Resolver::kOpenat2, mcpx::workspace::Resolver::kWalk}) {
    auto ws = mcpx::workspace::Workspace::Open(root.string(), {resolver});
    if (!ws.ok()) {
      std::printf("skip resolver: %s\n", ws.status().ToString().c_str());
      continue;
    }
    const bool o2 = resolver == mcpx::workspace::Resolver::kOpenat2;
    size_t count = 0;
    Measure(o2 ? "Workspace::List recursive (openat2)" : "Workspace::List recursive (walk)", 20,
            [&] {
              count = (*ws)->List(".", {.recursive = true, .max_entries = 1000000})->entries.size();
            });
    std::printf("  entries: %zu\n", count);
    if (o2) {
      mcpx::mcp::ToolRegistry registry;
      mcpx::tools::AddFileTools(registry, *ws);
      auto* tool = registry.Find("list_files");
      size_t bytes = 0;
      Measure("list_files tool (listing + JSON reply)", 20, [&] {
        auto call = std::make_shared<NullCall>();
        tool->Call(call);
        bytes = call->bytes();
      });
      std::printf("  reply size: %zu bytes\n", bytes);
    }
  }
  fs::remove_all(root);
  return 0;
}
