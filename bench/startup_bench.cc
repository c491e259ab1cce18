// Time from spawning `mcp-executor serve` to reading its initialize response, over N runs.
// usage: startup_bench [BINARY] [RUNS]   (defaults: ./mcp-executor next to this program, 200)
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace {

double NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// One run; returns milliseconds, or a negative value on failure.
double OneRun(const std::string& bin, const std::string& workspace) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {bin,           "serve",       "--workspace",
                                   workspace,     "--state-dir", workspace + "-state",
                                   "--log-level", "warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  static const std::string init =
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",)"
      R"("capabilities":{},"clientInfo":{"name":"bench","version":"0"}}})"
      "\n";

  const double start = NowMs();
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  double elapsed = -1;
  if (rc == 0 && write(in[1], init.data(), init.size()) == static_cast<ssize_t>(init.size())) {
    std::string got;
    char buf[4096];
    while (got.find('\n') == std::string::npos) {
      const ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    if (got.find("\"result\"") != std::string::npos) elapsed = NowMs() - start;
  }
  close(in[1]);  // EOF: the server exits
  close(out[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  return elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bin = argc > 1 ? argv[1] : "";
  if (bin.empty()) {
    std::string self = argv[0];
    const size_t slash = self.rfind('/');
    // The bench lives in <build>/bench/, the server in <build>/.
    bin = (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) +
          "/../mcp-executor";
  }
  const int runs = argc > 2 ? std::atoi(argv[2]) : 200;
  char tmpl[] = "/tmp/mcpx-startup-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string workspace = std::string(tmpl) + "/ws";
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const double t = OneRun(bin, workspace);
    if (t < 0) {
      std::fprintf(stderr, "run %d failed (binary %s)\n", i, bin.c_str());
      return 1;
    }
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[static_cast<size_t>(p * static_cast<double>(ms.size() - 1))];
  };
  std::printf(
      "startup to initialize response over %d runs: p50 %.2f ms, p90 %.2f ms, "
      "min %.2f ms, max %.2f ms\n",
      runs, pct(0.5), pct(0.9), ms.front(), ms.back());
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return 0;
}
