// Cost of jail::Spawn itself, without the CLI around it: N sandboxes of the default policy with
// the seccomp filters compiled once (as the server does), each running a program to its end.
// Phases: Spawn() (clone, id maps, cgroup, child setup up to execve), Wait() (the program's run
// plus the PID namespace teardown), Destroy() (cgroup removal).
//
// usage: jail_spawn_bench [RUNS] [PROGRAM...]   (defaults: 100, /bin/true)
//   MCPX_BENCH_NO_CGROUP=1: no cgroup (RLIMIT_AS instead), to see what cgroups cost.
//   MCPX_BENCH_PAUSE_MS=N: sleep N ms between runs, so that each spawn meets the kernel as a
//   one-shot `exec` does (back-to-back spawns find some kernel state still warm, e.g. an RCU
//   grace period already paid for by the previous spawn).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/options.h"
#include "jail/cgroup.h"
#include "jail/jail.h"
#include "jail/policy.h"
#include "jail/seccomp_compiler.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void Print(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  std::printf("  %-26s p50 %7.2f ms   p90 %7.2f ms   mean %7.2f ms   min %7.2f ms\n", what,
              ms[ms.size() / 2], ms[ms.size() * 9 / 10], sum / static_cast<double>(ms.size()),
              ms.front());
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 100;
  std::vector<std::string> program;
  for (int i = 2; i < argc; ++i) program.emplace_back(argv[i]);
  if (program.empty()) program = {"/bin/true"};
  if (runs <= 0) {
    std::fprintf(stderr, "usage: jail_spawn_bench [RUNS] [PROGRAM...]\n");
    return 2;
  }

  char doctor[] = "mcp-executor";
  char cmd[] = "doctor";
  char* fake_argv[] = {doctor, cmd, nullptr};
  auto opts = mcpx::cli::ParseOptions(2, fake_argv);
  if (!opts.ok()) {
    std::fprintf(stderr, "%s\n", opts.status().ToString().c_str());
    return 1;
  }
  // A load parses the policy and compiles its seccomp filters (built-in and profile); Spawn only
  // installs the compiled bytes.
  const auto load_start = Clock::now();
  auto policy = mcpx::jail::LoadPolicy("default", opts->policies_dir());
  const double first_load_ms = Ms(load_start, Clock::now());
  if (!policy.ok()) {
    std::fprintf(stderr, "policy: %s\n", policy.status().ToString().c_str());
    return 1;
  }

  // What the `exec` command pays before Spawn (the server pays it once per policy).
  {
    std::vector<double> load_ms, builtin_ms, profile_ms, detect_ms;
    for (int i = 0; i < 20; ++i) {
      const auto t0 = Clock::now();
      auto p = mcpx::jail::LoadPolicy("default", opts->policies_dir());
      const auto t1 = Clock::now();
      auto b = mcpx::jail::CompileBuiltinFilter();
      const auto t2 = Clock::now();
      auto f = mcpx::jail::CompileSeccompProfile((*policy)->seccomp);
      const auto t3 = Clock::now();
      auto m = mcpx::jail::CgroupManager::Detect();
      const auto t4 = Clock::now();
      if (!p.ok() || !b.ok() || !f.ok()) return 1;
      load_ms.push_back(Ms(t0, t1));
      builtin_ms.push_back(Ms(t1, t2));
      profile_ms.push_back(Ms(t2, t3));
      detect_ms.push_back(Ms(t3, t4));
    }
    std::printf(
        "per-command setup before Spawn: first LoadPolicy %.2f ms (parse + both seccomp "
        "compiles); then 20 runs (the compiles again on their own, for their share):\n",
        first_load_ms);
    Print("LoadPolicy", load_ms);
    Print("CompileBuiltinFilter", builtin_ms);
    Print("CompileSeccompProfile", profile_ms);
    Print("CgroupManager::Detect", detect_ms);
  }

  std::unique_ptr<mcpx::jail::CgroupManager> cgroups;
  if (std::getenv("MCPX_BENCH_NO_CGROUP") == nullptr) {
    cgroups = mcpx::jail::CgroupManager::Detect();
    if (!cgroups->report().usable) {
      std::printf("cgroups unusable (%s): running without\n", cgroups->report().detail.c_str());
      cgroups.reset();
    }
  }

  char tmpl[] = "/tmp/mcpx-spawn-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string root = tmpl;
  std::filesystem::create_directories(root + "/ws");
  std::filesystem::create_directories(root + "/packages");
  // The sandbox's uid must be able to enter the workspace.
  chmod(tmpl, 0755);

  mcpx::jail::SpawnRequest req;
  req.policy = *policy;
  req.rootfs_dir = opts->rootfs_dir();
  req.workspace = root + "/ws";
  req.packages = root + "/packages";
  req.kernel_dir = opts->kernel_dir();
  req.argv = program;
  req.env = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"};
  req.cgroups = cgroups.get();

  const char* pause_env = std::getenv("MCPX_BENCH_PAUSE_MS");
  const int pause_ms = pause_env != nullptr ? std::atoi(pause_env) : 0;
  std::vector<double> spawn_ms, wait_ms, destroy_ms, total_ms;
  for (int i = 0; i < runs; ++i) {
    if (pause_ms > 0) usleep(static_cast<useconds_t>(pause_ms) * 1000);
    const auto t0 = Clock::now();
    auto sb = mcpx::jail::Spawn(req);
    const auto t1 = Clock::now();
    if (!sb.ok()) {
      std::fprintf(stderr, "run %d: %s\n", i, sb.status().ToString().c_str());
      return 1;
    }
    auto st = sb->Wait();
    const auto t2 = Clock::now();
    sb->Destroy();
    const auto t3 = Clock::now();
    if (!st.ok() || st->ShellCode() != 0) {
      std::fprintf(
          stderr, "run %d: program failed (%s)\n", i,
          st.ok() ? std::to_string(st->ShellCode()).c_str() : st.status().ToString().c_str());
      return 1;
    }
    spawn_ms.push_back(Ms(t0, t1));
    wait_ms.push_back(Ms(t1, t2));
    destroy_ms.push_back(Ms(t2, t3));
    total_ms.push_back(Ms(t0, t3));
  }
  std::string shown;
  for (const auto& a : program) shown += (shown.empty() ? "" : " ") + a;
  std::printf("jail::Spawn of `%s`, %d runs, cgroup %s, seccomp precompiled, %d ms pause:\n",
              shown.c_str(), runs, cgroups ? "on" : "off", pause_ms);
  Print("Spawn (to execve)", spawn_ms);
  Print("Wait (run + teardown)", wait_ms);
  Print("Destroy (cgroup removal)", destroy_ms);
  Print("total", total_ms);
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return 0;
}
