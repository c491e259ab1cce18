// `mcp-executor exec`: one Python run in a fresh jail, output relayed to the terminal;
// `--audit` adds what the policy denied (exec_audit.h).
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exec_audit.h"
#include "cli/output.h"
#include "cli/sandbox_setup.h"
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

void WriteStderr(std::string_view text) { (void)WriteAll(STDERR_FILENO, text); }

// Where the run's output goes: our stdout/stderr, or (exec --audit --json) into the JSON
// object, up to kCaptureCap a stream.
struct OutputSink {
  static constexpr size_t kCaptureCap = 16u << 20;
  bool capture = false;
  std::string streams[2];
  bool truncated = false;

  void Write(int stream, std::string_view chunk) {
    if (!capture) {
      (void)WriteAll(stream == 0 ? STDOUT_FILENO : STDERR_FILENO, chunk);
      return;
    }
    std::string& s = streams[stream];
    const size_t room = kCaptureCap - std::min(kCaptureCap, s.size());
    if (chunk.size() > room) truncated = true;
    s.append(chunk.substr(0, room));
  }
};

// Copies both pipes to the sink until both reach EOF. An audited sandbox's notifications are
// answered meanwhile, and after the pipes close until init has exited: a denied call waits
// for its answer, and the code may have closed its stdout before it makes one.
Status Relay(int out_fd, int err_fd, jail::Sandbox& sandbox, OutputSink& sink) {
  enum { kOut, kErr, kAudit, kExit };
  pollfd fds[4] = {{out_fd, POLLIN, 0},
                   {err_fd, POLLIN, 0},
                   {sandbox.audit ? sandbox.audit->fd() : -1, POLLIN, 0},
                   {sandbox.audit ? sandbox.pidfd.get() : -1, POLLIN, 0}};
  char buf[65536];
  while (fds[kOut].fd >= 0 || fds[kErr].fd >= 0 || fds[kExit].fd >= 0) {
    if (RetryEintr([&] { return poll(fds, 4, -1); }) < 0) {
      return ErrnoStatus(Code::kInternal, "cannot wait for the sandbox's output");
    }
    for (const int i : {kOut, kErr}) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = RetryEintr([&] { return read(fds[i].fd, buf, sizeof(buf)); });
      if (n <= 0) {
        fds[i].fd = -1;
        continue;
      }
      sink.Write(i, std::string_view(buf, static_cast<size_t>(n)));
    }
    if ((fds[kAudit].revents & POLLIN) != 0) RETURN_IF_ERROR(sandbox.audit->ServeOne());
    // The filter has no task left, or init has exited (and the PID namespace with it).
    if ((fds[kAudit].revents & (POLLHUP | POLLERR)) != 0) fds[kAudit].fd = fds[kExit].fd = -1;
    if (fds[kExit].revents != 0) fds[kAudit].fd = fds[kExit].fd = -1;
  }
  return Status::Ok();
}

Result<int> Exec(const Options& opts) {
  if (opts.json && !opts.audit) return InvalidArgument("exec --json goes with --audit");
  ASSIGN_OR_RETURN(std::string code, ReadCode(opts));
  ASSIGN_OR_RETURN(session::ServerPolicyPtr policy,
                   session::LoadServerPolicy(opts.policy, opts.policies_dir()));
  ASSIGN_OR_RETURN(std::string workspace, EnsureDir(opts.workspace, "workspace"));

  // The same sandbox, mounts and environment as a server's kernels (session/runtime.h).
  ASSIGN_OR_RETURN(SandboxSetup setup, PrepareSandbox(opts, policy, workspace));
  const session::KernelConfig& config = setup.config;

  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return ErrnoStatus(Code::kResourceExhausted, "cannot create output pipes");
  }
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]), err_r(err_pipe[0]), err_w(err_pipe[1]);

  std::optional<AuditRecorder> audit;
  std::vector<std::string> argv = {session::kOverlayPython, "-c"};
  if (opts.audit) {
    // The code runs through the wrapper that notes its line (exec_audit.h); what the code sees
    // is what `python -c` gives it. Its tracebacks say <string> either way; the report names
    // the FILE.
    ASSIGN_OR_RETURN(audit,
                     AuditRecorder::Create(opts.code ? "<string>" : opts.positional.front(), code));
    argv = {session::kOverlayPython, kAuditWrapper, std::to_string(kAuditPageFd)};
  }
  argv.push_back(std::move(code));
  jail::SpawnRequest req = session::PythonSpawnRequest(config, std::move(argv));
  // A plain script has no kernel to pick a backend; the font cache folder is read-only.
  req.env.push_back("MPLBACKEND=Agg");
  req.env.push_back("MPLCONFIGDIR=/tmp/matplotlib");
  // Pipes, not our terminal: a tty fd in the sandbox would allow TIOCSTI-style injection.
  req.fds = {{out_w.get(), 1}, {err_w.get(), 2}};
  if (audit) {
    req.fds.push_back({audit->page_fd(), kAuditPageFd});
    req.seccomp_audit = true;
    req.audit_hook = audit->Hook();
  }
  ASSIGN_OR_RETURN(jail::Sandbox sandbox, jail::Spawn(req));
  out_w.reset();
  err_w.reset();

  g_sandbox_pid = sandbox.pid;
  struct sigaction sa {};
  sa.sa_handler = ForwardToSandbox;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);

  OutputSink sink;
  sink.capture = opts.json;
  RETURN_IF_ERROR(Relay(out_r.get(), err_r.get(), sandbox, sink));
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
  if (audit) {
    const std::string& name = policy->name();
    if (opts.json) {
      nlohmann::ordered_json j = {{"exit_code", status.ShellCode()},
                                  {"stdout", sink.streams[0]},
                                  {"stderr", sink.streams[1]},
                                  {"truncated", sink.truncated},
                                  {"policy", name},
                                  {"denied", audit->DeniedJson()}};
      // The code's output may be any bytes: invalid UTF-8 becomes U+FFFD.
      WriteStdout(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
    } else {
      WriteStderr(audit->Report(name));
    }
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
