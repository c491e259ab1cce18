// `mcp-executor probe`: the escape-probe corpus (sandbox/kernel/probe/) inside the sandbox a
// policy describes, with host-side checks around it: a canary folder outside the workspace, a
// canary in our own environment, and listeners on the host's loopback and abstract namespace.
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/probe_report.h"
#include "cli/sandbox_setup.h"
#include "jail/jail.h"
#include "jail/landlock.h"
#include "session/overlay.h"
#include "session/runtime.h"
#include "session/server_policy.h"
#include "util/io.h"
#include "util/random.h"

namespace mcpx::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRunner = "/opt/mcpx/kernel/probe/mcpx_probe.py";
constexpr size_t kMaxLine = 64 * 1024;           // one result line from the sandbox
constexpr size_t kMaxResults = 4 * 1024 * 1024;  // all of them
constexpr size_t kStderrTail = 4096;             // kept to explain a run that failed
constexpr auto kRunDeadline = std::chrono::minutes(10);

// The runner's --only rule (mcpx_probe.py _selected): a glob when it has *?[, else a substring.
bool Selected(const std::string& name, const std::string& pattern) {
  if (pattern.empty()) return true;
  if (pattern.find_first_of("*?[") != std::string::npos) {
    return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
  }
  return name.find(pattern) != std::string::npos;
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What each run sets up on the host and removes afterwards: a fresh workspace (probes write and
// plant there), a canary folder beside it, and the canary token, also in our own environment.
struct Scene {
  std::string dir, workspace, canary_dir, token;
  ~Scene() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Result<std::unique_ptr<Scene>> SetUpScene(const std::string& state_dir) {
  ASSIGN_OR_RETURN(std::string state, EnsureDir(state_dir, "state dir"));
  std::string tmpl = state + "/probe-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot create a folder in " + state);
  }
  auto scene = std::make_unique<Scene>();
  scene->dir = tmpl;
  ASSIGN_OR_RETURN(scene->workspace, EnsureDir(scene->dir + "/workspace", "workspace"));
  scene->canary_dir = scene->dir + "/canary";
  auto token = RandomHex(16);
  if (!token) return Status(Code::kInternal, "getrandom failed: no canary token");
  scene->token = std::move(*token);
  std::error_code ec;
  fs::create_directory(scene->canary_dir, ec);
  std::ofstream(scene->canary_dir + "/secret") << scene->token;
  if (ec || ReadSmallFile(scene->canary_dir + "/secret") != scene->token) {
    return Status(Code::kFailedPrecondition, "cannot write the canary in " + scene->dir);
  }
  setenv("MCPX_PROBE_CANARY", scene->token.c_str(), 1);
  return scene;
}

// Listeners the sandbox must not reach: 127.0.0.1:<port> and an abstract unix socket.
struct HostListeners {
  UniqueFd tcp, unix_abstract;
  int port = 0;
  std::string abstract_name;
};

Result<HostListeners> ListenOnHost(const std::string& token) {
  HostListeners h;
  h.tcp.reset(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(in);
  if (!h.tcp || bind(h.tcp.get(), reinterpret_cast<sockaddr*>(&in), sizeof(in)) != 0 ||
      listen(h.tcp.get(), 8) != 0 ||
      getsockname(h.tcp.get(), reinterpret_cast<sockaddr*>(&in), &len) != 0) {
    return ErrnoStatus(Code::kUnavailable, "cannot listen on the host's 127.0.0.1");
  }
  h.port = ntohs(in.sin_port);
  h.abstract_name = "mcpx-probe-" + token.substr(0, 16);
  h.unix_abstract.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::copy(h.abstract_name.begin(), h.abstract_name.end(), un.sun_path + 1);
  const auto un_len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + h.abstract_name.size());
  if (!h.unix_abstract ||
      bind(h.unix_abstract.get(), reinterpret_cast<sockaddr*>(&un), un_len) != 0 ||
      listen(h.unix_abstract.get(), 8) != 0) {
    return ErrnoStatus(Code::kUnavailable, "cannot listen on an abstract unix socket");
  }
  return h;
}

ProbeRow ListenerRow(int fd, std::string name, std::string what, const std::string& where) {
  ProbeRow row{std::move(name), std::move(what), "contained", "contained", ""};
  const UniqueFd peer(accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (peer) {
    row.observed = "escaped";
    row.detail = "a connection from the sandbox reached " + where;
  } else {
    row.detail = "no connection reached " + where + " during the run";
  }
  return row;
}

// The canary folder outside the workspace: `secret` holds the token, nothing else is there.
ProbeRow CanaryRow(const std::string& dir, const std::string& token) {
  ProbeRow row{"host.canary-intact", "the host canary folder outside the workspace is unchanged",
               "contained", "contained", "canary unchanged, nothing added"};
  std::vector<std::string> extra;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename() != "secret") extra.push_back(e.path().filename().string());
  }
  if (ReadSmallFile(dir + "/secret") != token) {
    row.observed = "escaped";
    row.detail = "the canary file was changed or removed";
  } else if (!extra.empty()) {
    row.observed = "escaped";
    row.detail = "new in the canary folder: " + extra.front();
  }
  return row;
}

std::vector<ProbeRow> HostRows(const HostListeners& listeners, const Scene& scene) {
  std::vector<ProbeRow> rows;
  rows.push_back(ListenerRow(listeners.tcp.get(), "host.loopback-listener",
                             "nothing reached a listener on the host's 127.0.0.1",
                             "127.0.0.1:" + std::to_string(listeners.port)));
  rows.push_back(ListenerRow(listeners.unix_abstract.get(), "host.abstract-listener",
                             "nothing reached the host's abstract unix socket",
                             "@" + listeners.abstract_name));
  rows.push_back(CanaryRow(scene.canary_dir, scene.token));
  return rows;
}

// What will bound the sandbox's CPU rate: its cgroup's quota or its init (jail.h).
std::string CpuLimitBy(const session::KernelConfig& config) {
  return std::string(jail::CpuLimitBy(config.policy->limits(), config.cgroups));
}

// The host paths the sandbox is built from: procfs names them in mountinfo (a known limit).
nlohmann::json BindSources(const session::KernelConfig& config) {
  nlohmann::json out = {config.workspace, config.packages_dir, config.mpl_cache_dir,
                        config.kernel_dir};
  for (const jail::BindMount& b : config.policy->sandbox->extra_binds) out.push_back(b.source);
  return out;
}

nlohmann::json HostContext(const Options& opts, const session::KernelConfig& config,
                           const Scene& scene, const HostListeners& listeners) {
  auto number_in = [](const char* path) -> long {
    return std::strtol(ReadSmallFile(path).c_str(), nullptr, 10);
  };
  rlimit sig{};
  getrlimit(RLIMIT_SIGPENDING, &sig);
  const char* home = std::getenv("HOME");
  std::error_code ec;
  return {{"uid", geteuid()},
          {"gid", getegid()},
          {"home", home != nullptr ? home : ""},
          {"state_dir", fs::absolute(opts.state_dir, ec).string()},
          {"workspace", config.workspace},
          {"binds", BindSources(config)},
          {"cwd", fs::current_path(ec).string()},
          {"canary_dir", scene.canary_dir},
          {"canary_token", scene.token},
          {"server_pid", getpid()},
          {"loopback_port", listeners.port},
          {"abstract_socket", listeners.abstract_name},
          {"inotify_max_user_instances", number_in("/proc/sys/fs/inotify/max_user_instances")},
          {"inotify_max_user_watches", number_in("/proc/sys/fs/inotify/max_user_watches")},
          {"sigpending_rlimit", static_cast<long>(sig.rlim_cur)},
          {"landlock_abi", jail::LandlockAbi()},
          {"cpu_limit_by", CpuLimitBy(config)}};
}

// Reads the result lines from `results` until EOF, draining the sandbox's stdout and stderr
// (kept: stderr's tail) so that it never blocks on a full pipe.
void CollectResults(jail::Sandbox& sandbox, int results, int out, int err, ProbeRun* run,
                    std::string* stderr_tail) {
  pollfd fds[3] = {{results, POLLIN, 0}, {out, POLLIN, 0}, {err, POLLIN, 0}};
  std::string pending;
  size_t total = 0;
  long end = -1;
  const auto deadline = std::chrono::steady_clock::now() + kRunDeadline;
  char buf[65536];
  while (fds[0].fd >= 0 || fds[1].fd >= 0 || fds[2].fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run->failure = "the probes did not finish within 10 minutes";
      sandbox.Kill();
      break;
    }
    if (RetryEintr([&] { return poll(fds, 3, static_cast<int>(left.count())); }) < 0) break;
    for (int i = 0; i < 3; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = RetryEintr([&] { return read(fds[i].fd, buf, sizeof(buf)); });
      if (n <= 0) {
        fds[i].fd = -1;
        continue;
      }
      if (i == 2) {
        stderr_tail->append(buf, static_cast<size_t>(n));
        if (stderr_tail->size() > 2 * kStderrTail)
          stderr_tail->erase(0, stderr_tail->size() - kStderrTail);
      }
      if (i != 0) continue;
      total += static_cast<size_t>(n);
      pending.append(buf, static_cast<size_t>(n));
      for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
        auto row = ParseProbeLine(std::string_view(pending).substr(0, nl), &end);
        if (!row.ok()) {
          run->failure = "bad result line: " + row.status().message();
        } else if (!row->name.empty()) {
          run->rows.push_back(std::move(*row));
        }
      }
      if (pending.size() > kMaxLine || total > kMaxResults) {
        run->failure = "the probe results exceed their size limit";
        sandbox.Kill();
        fds[0].fd = -1;
      }
    }
  }
  if (end == 0 && run->failure.empty()) run->failure = "no probe matches --only";
  if (end < 0 && run->failure.empty()) {
    run->failure = run->rows.empty() ? "the probe runner reported nothing"
                                     : "the probe runner stopped after " + run->rows.back().name;
  }
  run->complete = run->failure.empty() && end == static_cast<long>(run->rows.size());
}

int Report(const Options& opts, const ProbeRun& run) {
  if (opts.json) {
    WriteStdout(ProbeRunToJson(run, opts.list).dump() + "\n");
  } else {
    WriteStdout(RenderProbeTable(run, opts.list));
  }
  if (opts.list) return run.complete ? 0 : 2;
  return ProbeExitCode(Summarize(run.rows), run.complete);
}

Result<int> Probe(const Options& opts) {
  // Every run makes a fresh workspace, whose change of owner would be logged at info each time.
  if (opts.log_level == "info") spdlog::set_level(spdlog::level::warn);
  ASSIGN_OR_RETURN(session::ServerPolicyPtr policy,
                   session::LoadServerPolicy(opts.policy, opts.policies_dir()));
  ASSIGN_OR_RETURN(std::unique_ptr<Scene> scene, SetUpScene(opts.state_dir));
  ASSIGN_OR_RETURN(HostListeners listeners, ListenOnHost(scene->token));
  ProbeRun run;
  run.policy = policy->name();
  run.server_user = geteuid() == 0 ? "root" : "uid " + std::to_string(geteuid());
  ASSIGN_OR_RETURN(SandboxSetup setup, PrepareSandbox(opts, policy, scene->workspace));
  const nlohmann::json context = {{"only", opts.only},
                                  {"list", opts.list},
                                  {"limits", session::ServerPolicyToJson(*policy)["limits"]},
                                  {"host", HostContext(opts, setup.config, *scene, listeners)}};
  // On stdin, not argv: every process in the sandbox can read the runner's /proc/<pid>/cmdline.
  ASSIGN_OR_RETURN(auto in, MakePipe());
  const std::string context_text = context.dump();
  if (context_text.size() > 60000 || WriteAll(in.second.get(), context_text) != 0) {
    return Internal("the probe context does not fit a pipe");
  }
  in.second.reset();
  ASSIGN_OR_RETURN(auto results, MakePipe());
  ASSIGN_OR_RETURN(auto out, MakePipe());
  ASSIGN_OR_RETURN(auto err, MakePipe());
  jail::SpawnRequest req =
      session::PythonSpawnRequest(setup.config, {session::kOverlayPython, kRunner});
  req.fds = {
      {in.first.get(), 0}, {out.second.get(), 1}, {err.second.get(), 2}, {results.second.get(), 3}};
  auto sandbox = jail::Spawn(req);
  if (!sandbox.ok()) {
    run.failure = sandbox.status().ToString();
    return Report(opts, run);
  }
  results.second.reset();
  out.second.reset();
  err.second.reset();

  std::string stderr_tail;
  CollectResults(*sandbox, results.first.get(), out.first.get(), err.first.get(), &run,
                 &stderr_tail);
  ASSIGN_OR_RETURN(jail::ExitStatus status, sandbox->Wait());
  if (status.ShellCode() != 0 || (!run.failure.empty() && !stderr_tail.empty())) {
    const std::string tail = stderr_tail.size() > kStderrTail
                                 ? stderr_tail.substr(stderr_tail.size() - kStderrTail)
                                 : stderr_tail;
    spdlog::error("probe runner exited {}; its stderr ends:\n{}", status.ShellCode(), tail);
  }
  for (ProbeRow& row : HostRows(listeners, *scene)) {
    if (opts.list) row.observed = row.detail = "";
    if (Selected(row.name, opts.only)) run.rows.push_back(std::move(row));
  }
  return Report(opts, run);
}

}  // namespace

int RunProbe(const Options& opts) {
  auto result = Probe(opts);
  if (!result.ok()) {
    spdlog::error("probe: {}", result.status().ToString());
    return 2;
  }
  return *result;
}

}  // namespace mcpx::cli
