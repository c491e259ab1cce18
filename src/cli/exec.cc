// `mcp-executor exec`: one Python run in a fresh jail, output relayed to the terminal.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "jail/cgroup.h"
#include "jail/jail.h"
#include "jail/policy.h"
#include "jail/rlimits.h"
#include "session/overlay.h"
#include "session/runtime.h"
#include "session/server_policy.h"
#include "util/io.h"
#include "util/units.h"

namespace mcpx::cli {
namespace {

volatile pid_t g_sandbox_pid = 0;

// Ctrl-C reaches only us (the sandbox has its own session, no terminal): pass it on to init,
// which forwards it to Python (KeyboardInterrupt).
void ForwardToSandbox(int sig) {
  const pid_t pid = g_sandbox_pid;
  if (pid > 0) kill(pid, sig);
}

Result<std::string> ReadCode(const Options& opts) {
  if (opts.code) return *opts.code;
  if (opts.positional.size() != 1) {
    return InvalidArgument("exec needs -c CODE or exactly one FILE (see `mcp-executor help`)");
  }
  // The sandbox cannot see host paths outside the workspace, so the server reads the file.
  std::ifstream in(opts.positional[0], std::ios::binary);
  if (!in) return ErrnoStatus(Code::kNotFound, "cannot read " + opts.positional[0]);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::string> EnsureDir(const std::string& path, const char* what) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return Status(Code::kFailedPrecondition,
                  std::string("cannot create ") + what + " " + path + ": " + ec.message(),
                  ec.value());
  }
  const auto abs = std::filesystem::canonical(path, ec);
  if (ec) return Status(Code::kNotFound, std::string("cannot resolve ") + what + " " + path);
  return abs.string();
}

void WriteStderr(std::string_view text) { (void)WriteAll(STDERR_FILENO, text); }

// Copies both pipes to our stdout/stderr until both reach EOF.
void Relay(int out_fd, int err_fd) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_count = 2;
  char buf[65536];
  while (open_count > 0) {
    if (RetryEintr([&] { return poll(fds, 2, -1); }) < 0) return;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = RetryEintr([&] { return read(fds[i].fd, buf, sizeof(buf)); });
      if (n <= 0) {
        fds[i].fd = -1;
        --open_count;
        continue;
      }
      const std::string_view chunk(buf, static_cast<size_t>(n));
      if (i == 0) {
        WriteStdout(chunk);
      } else {
        WriteStderr(chunk);
      }
    }
  }
}

Result<int> Exec(const Options& opts) {
  ASSIGN_OR_RETURN(std::string code, ReadCode(opts));
  ASSIGN_OR_RETURN(session::ServerPolicyPtr policy,
                   session::LoadServerPolicy(opts.policy, opts.policies_dir()));
  ASSIGN_OR_RETURN(std::string workspace, EnsureDir(opts.workspace, "workspace"));

  std::unique_ptr<jail::CgroupManager> cgroups = jail::CgroupManager::Detect();
  if (!cgroups->report().usable) {
    spdlog::warn("cgroup limits unavailable ({}); memory is bounded by RLIMIT_AS instead",
                 cgroups->report().detail);
    cgroups.reset();
  }
  // The same sandbox, mounts and environment as a server's kernels (session/runtime.h).
  ASSIGN_OR_RETURN(session::KernelConfig config,
                   session::MakeKernelConfig(
                       policy, {opts.rootfs_dir(), opts.kernel_dir(), opts.state_dir, workspace},
                       cgroups.get()));

  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return ErrnoStatus(Code::kResourceExhausted, "cannot create output pipes");
  }
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]), err_r(err_pipe[0]), err_w(err_pipe[1]);

  jail::SpawnRequest req =
      session::PythonSpawnRequest(config, {session::kOverlayPython, "-c", std::move(code)});
  // A plain script has no kernel to pick a backend; the font cache folder is read-only.
  req.env.push_back("MPLBACKEND=Agg");
  req.env.push_back("MPLCONFIGDIR=/tmp/matplotlib");
  // Pipes, not our terminal: a tty fd in the sandbox would allow TIOCSTI-style injection.
  req.fds = {{out_w.get(), 1}, {err_w.get(), 2}};
  ASSIGN_OR_RETURN(jail::Sandbox sandbox, jail::Spawn(req));
  out_w.reset();
  err_w.reset();

  g_sandbox_pid = sandbox.pid;
  struct sigaction sa {};
  sa.sa_handler = ForwardToSandbox;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);

  Relay(out_r.get(), err_r.get());
  ASSIGN_OR_RETURN(jail::ExitStatus status, sandbox.Wait());
  g_sandbox_pid = 0;

  if (sandbox.cgroup) {
    if (auto usage = sandbox.cgroup->Usage(); usage.ok()) {
      if (usage->oom_kills > 0) {
        WriteStderr("killed: memory limit " + MiB(policy->limits().memory_bytes) + " exceeded\n");
      }
      if (usage->pids_limit_hits > 0 && !status.task_limit) {
        WriteStderr("note: process limit " + std::to_string(policy->limits().pids) +
                    " reached (fork/thread creation failed)\n");
      }
    }
  }
  if (status.task_limit) {
    WriteStderr("killed: process limit " + std::to_string(jail::ProcessLimit(policy->limits())) +
                " reached; the sandbox was stopped\n");
  }
  return status.ShellCode();
}

}  // namespace

int RunExec(const Options& opts) {
  auto result = Exec(opts);
  if (!result.ok()) {
    spdlog::error("exec: {}", result.status().ToString());
    return 125;
  }
  return *result;
}

}  // namespace mcpx::cli
