#include "packages/installer.h"

#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "jail/jail.h"
#include "jail/userns.h"
#include "packages/proxy.h"
#include "packages/requirement.h"
#include "session/overlay.h"
#include "util/io.h"
#include "util/text.h"
#include "util/unique_fd.h"
#include "util/utf8.h"

namespace mcpx::packages {
namespace {

using json = nlohmann::json;
using session::InstallOutcome;
using session::InstallStatus;

constexpr const char* kCacheInside = "/opt/mcpx/pip-cache";
constexpr const char* kWheelhouseInside = "/opt/mcpx/wheelhouse/";
constexpr size_t kMaxReportBytes = 256u << 10;
constexpr size_t kMaxTailBytes = 16u << 10;
constexpr size_t kMaxErrorChars = 600;
constexpr size_t kMaxProgressChars = 200;

std::string Quoted(const std::string& s) { return "install_package(\"" + s + "\")"; }

// At most n bytes, cut between characters, "..." where it was cut.
std::string Cap(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, Utf8SafePrefix(s, n - 3)) + "...";
  return s;
}

// A report string from the jail: bounded, printable.
std::string Clean(const json& v, size_t cap) {
  if (!v.is_string()) return "";
  std::string s = v.get<std::string>();
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return Cap(std::move(s), cap);
}

// Hands each chunk that can be read from `fd` now to `on_data`; at its end (or an error) the loop
// stops watching it.
template <class F>
void ReadAvailable(EventLoop* loop, int fd, F on_data) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) loop->Remove(fd);
      return;
    }
    on_data(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace

struct Installer::Pending {
  uint64_t id = 0;
  session::InstallRequest request;
  session::InstallCallbacks cb;
  Requirement requirement;
};

struct Installer::Running {
  std::unique_ptr<Pending> call;
  jail::Sandbox sandbox;
  UniqueFd output;  // pip's stdout and stderr
  UniqueFd report;  // fd 3 of mcpx_install.py
  std::string tail;
  std::string line;
  std::string report_text;
  std::unique_ptr<PackageProxy> proxy;
  EventLoop::TimerId timer = 0;
  bool timed_out = false;
  bool cancelled = false;
  int64_t start_ms = 0;
};

Installer::Installer(EventLoop* loop, session::KernelConfig config, InstallerOptions options)
    : loop_(loop), config_(std::move(config)), options_(std::move(options)) {}

Installer::~Installer() { Shutdown(); }

Status Installer::Prepare() {
  if (mkdir(options_.cache_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot create " + options_.cache_dir);
  }
  // The same host identity as the overlay's: the installer's jail writes both.
  ASSIGN_OR_RETURN(const jail::IdMap ids, jail::PlanIdMap(config_.packages_dir));
  if (geteuid() == 0 && lchown(options_.cache_dir.c_str(), ids.host_uid, ids.host_gid) != 0) {
    return ErrnoStatus(Code::kFailedPrecondition, "cannot hand " + options_.cache_dir + " over");
  }
  return Status::Ok();
}

uint64_t Installer::Install(session::InstallRequest request, session::InstallCallbacks cb) {
  const uint64_t id = next_id_++;
  InstallOutcome refused;
  refused.requirement = request.requirement;
  if (shutting_down_) {
    refused.error = Quoted(request.requirement) + ": the server is shutting down";
    cb.done(std::move(refused));
    return id;
  }
  auto parsed = ParseRequirement(request.requirement);
  if (!parsed.ok()) {
    refused.status = InstallStatus::kRefused;
    refused.error = "refused: " + parsed.status().message();  // it quotes the argument
    cb.done(std::move(refused));
    return id;
  }
  auto p = std::make_unique<Pending>();
  p->id = id;
  p->request = std::move(request);
  p->cb = std::move(cb);
  p->requirement = std::move(parsed).value();
  if (running_ && p->cb.progress) {
    p->cb.progress("waiting: " + std::to_string(queue_.size() + 1) +
                   " install(s) ahead of this one run first");
  }
  queue_.push_back(std::move(p));
  if (!running_) StartNext();
  return id;
}

void Installer::Cancel(uint64_t id) {
  if (running_ && running_->call->id == id) {
    running_->cancelled = true;
    running_->sandbox.Kill();
    return;
  }
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if ((*it)->id != id) continue;
    std::unique_ptr<Pending> p = std::move(*it);
    queue_.erase(it);
    InstallOutcome out;
    out.status = InstallStatus::kCancelled;
    out.requirement = p->request.requirement;
    out.error = Quoted(out.requirement) + " cancelled before it started";
    p->cb.done(std::move(out));
    return;
  }
}

void Installer::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (running_) {
    running_->cancelled = true;
    running_->sandbox.Kill();
    OnExit();
  }
  auto queue = std::exchange(queue_, {});
  for (auto& p : queue) {
    InstallOutcome out;
    out.requirement = p->request.requirement;
    out.error = Quoted(out.requirement) + ": the server is shutting down";
    p->cb.done(std::move(out));
  }
}

void Installer::StartNext() {
  while (!running_ && !queue_.empty()) {
    auto run = std::make_unique<Running>();
    run->call = std::move(queue_.front());
    queue_.pop_front();
    const Pending& call = *run->call;
    const bool network = UsesNetwork(options_.index);

    std::vector<std::string> find_links;
    for (size_t i = 0; i < options_.index.find_links.size(); ++i) {
      find_links.push_back(kWheelhouseInside + std::to_string(i));
    }
    std::vector<std::string> argv = {session::kOverlayPython, "-s",
                                     "/opt/mcpx/kernel/mcpx_install.py", call.requirement.text};
    for (const char* o : {"--no-input", "--disable-pip-version-check", "--progress-bar", "off",
                          "--no-warn-script-location", "--retries", "2", "--timeout", "30"}) {
      argv.emplace_back(o);
    }
    // No package's build code runs while the proxy is open, unless the operator allows it.
    if (!config_.policy->settings.allow_sdist) {
      argv.insert(argv.end(), {"--only-binary", ":all:"});
    }
    if (call.request.upgrade)
      argv.insert(argv.end(), {"--upgrade", "--upgrade-strategy", "only-if-needed"});
    for (std::string& a : PipSourceArgs(options_.index, find_links)) argv.push_back(std::move(a));

    jail::SpawnRequest req = session::PythonSpawnRequest(config_, std::move(argv));
    req.workspace.clear();  // the installer never sees the workspace
    req.identity_dir = config_.packages_dir;
    req.packages_writable = true;
    req.cwd = "/tmp";
    req.extra_binds = {jail::BindMount{.source = options_.cache_dir,
                                       .target = kCacheInside,
                                       .writable = true,
                                       .optional = false,
                                       .reason = "pip's download cache"}};
    for (size_t i = 0; i < options_.index.find_links.size(); ++i) {
      req.extra_binds.push_back(jail::BindMount{.source = options_.index.find_links[i],
                                                .target = find_links[i],
                                                .writable = false,
                                                .optional = false,
                                                .reason = ""});
    }
    req.env = {"PATH=/usr/bin:/bin",
               "HOME=/tmp",
               "LANG=C.UTF-8",
               "TMPDIR=/tmp",
               std::string("PIP_CACHE_DIR=") + kCacheInside,
               "PIP_CONFIG_FILE=/dev/null",
               "PIP_DISABLE_PIP_VERSION_CHECK=1",
               "PIP_NO_INPUT=1",
               "PYTHONUNBUFFERED=1"};
    if (network) {
      const std::string proxy = "http://127.0.0.1:" + std::to_string(kProxyPort);
      for (const char* k : {"HTTPS_PROXY=", "HTTP_PROXY=", "https_proxy=", "http_proxy="}) {
        req.env.push_back(k + proxy);
      }
      req.listen_port = kProxyPort;
    }

    UniqueFd output, report;
    auto spawn = [&]() -> Result<jail::Sandbox> {
      ASSIGN_OR_RETURN(auto out_pipe, MakePipe());
      ASSIGN_OR_RETURN(auto report_pipe, MakePipe());
      output = std::move(out_pipe.first);
      report = std::move(report_pipe.first);
      SetNonBlocking(output.get());
      SetNonBlocking(report.get());
      req.fds = {
          {out_pipe.second.get(), 1}, {out_pipe.second.get(), 2}, {report_pipe.second.get(), 3}};
      return jail::Spawn(req);
    };
    Result<jail::Sandbox> sb = spawn();
    if (!sb.ok()) {
      InstallOutcome out;
      out.requirement = call.request.requirement;
      out.error =
          Quoted(out.requirement) + ": cannot start the installer: " + sb.status().ToString();
      spdlog::error("{}", out.error);
      run->call->cb.done(std::move(out));
      continue;
    }
    run->sandbox = std::move(sb).value();
    run->output = std::move(output);
    run->report = std::move(report);
    run->start_ms = EventLoop::NowMs();
    if (network) {
      run->proxy = std::make_unique<PackageProxy>(loop_, ProxyRulesFor(options_.index));
      if (Status st = run->proxy->Serve(std::move(run->sandbox.listener)); !st.ok()) {
        spdlog::error("installer proxy: {}", st.ToString());
      }
    }
    spdlog::info("installing {} ({})", call.requirement.text, DescribeSources(options_.index));
    if (call.cb.progress) call.cb.progress("installing " + call.requirement.text);

    Running* r = run.get();
    (void)loop_->Add(r->output.get(), EPOLLIN, [this, r](uint32_t) { ReadOutput(*r); });
    (void)loop_->Add(r->report.get(), EPOLLIN, [this, r](uint32_t) { ReadReport(*r); });
    (void)loop_->Add(r->sandbox.pidfd.get(), EPOLLIN, [this](uint32_t) { OnExit(); });
    const uint32_t timeout_s = config_.policy->settings.install_timeout_s;
    r->timer = loop_->AddTimer(std::chrono::seconds(timeout_s), [this, r] {
      r->timer = 0;
      r->timed_out = true;
      r->sandbox.Kill();
    });
    running_ = std::move(run);
  }
}

// Reads what pip wrote so far: its last kMaxTailBytes are kept for the error, each complete
// line goes out as progress.
void Installer::ReadOutput(Running& r) {
  ReadAvailable(loop_, r.output.get(), [&r](std::string_view data) {
    r.tail.append(data);
    if (r.tail.size() > kMaxTailBytes) r.tail.erase(0, r.tail.size() - kMaxTailBytes);
    for (const char ch : data) {
      if (ch != '\n') {
        if (r.line.size() < kMaxProgressChars) r.line.push_back(ch);
        continue;
      }
      if (!r.line.empty() && r.call->cb.progress) {
        r.call->cb.progress(r.line.substr(0, Utf8SafePrefix(r.line, r.line.size())));
      }
      r.line.clear();
    }
  });
}

// Reads mcpx_install.py's report (fd 3), at most kMaxReportBytes of it.
void Installer::ReadReport(Running& r) {
  ReadAvailable(loop_, r.report.get(), [&r](std::string_view data) {
    if (r.report_text.size() < kMaxReportBytes) r.report_text.append(data);
  });
}

void Installer::OnExit() {
  if (!running_) return;
  Running& r = *running_;
  auto exit = r.sandbox.Wait();
  loop_->Remove(r.sandbox.pidfd.get());
  loop_->CancelTimer(r.timer);
  // What the pipes still hold: the jail is gone, so both reach their end.
  ReadReport(r);
  ReadOutput(r);
  loop_->Remove(r.output.get());
  loop_->Remove(r.report.get());
  if (r.proxy) {
    const auto& stats = r.proxy->stats();
    if (stats.refused > 0) {
      spdlog::warn("installer proxy refused {} connection(s) during {}", stats.refused,
                   r.call->requirement.text);
    }
    r.proxy->Stop();
  }
  InstallOutcome out = OutcomeOf(r, exit.ok() ? exit->ShellCode() : 128 + 9);
  Finish(std::move(out));
}

InstallOutcome Installer::OutcomeOf(const Running& r, int shell_code) const {
  InstallOutcome out;
  out.requirement = r.call->request.requirement;
  out.duration_ms = EventLoop::NowMs() - r.start_ms;
  const std::string who = Quoted(out.requirement);
  if (r.timed_out) {
    out.status = InstallStatus::kTimeout;
    out.error = who + " stopped after " +
                std::to_string(config_.policy->settings.install_timeout_s) +
                " s (policy limits.install_timeout_s); the packages installed before are kept";
    return out;
  }
  if (r.cancelled) {
    out.status = InstallStatus::kCancelled;
    out.error = who + " cancelled; pip was stopped";
    return out;
  }
  const json report = json::parse(r.report_text, nullptr, false);
  if (!report.is_object() || !report.contains("exit_code")) {
    out.error = who + " failed: the installer ended (exit " + std::to_string(shell_code) +
                ") without a report";
    const auto pos = r.tail.find_last_not_of('\n');
    if (pos != std::string::npos) {
      const auto start = r.tail.rfind('\n', pos);
      out.error +=
          "; last output: " + r.tail.substr(start == std::string::npos ? 0 : start + 1,
                                            pos - (start == std::string::npos ? 0 : start));
    }
    out.error = Cap(out.error, kMaxErrorChars);
    return out;
  }
  if (report.value("exit_code", 1) != 0) {
    std::string lines;
    if (report.contains("errors") && report["errors"].is_array()) {
      for (const json& l : report["errors"]) {
        const std::string s = Clean(l, 400);
        if (!s.empty()) lines += (lines.empty() ? "" : " | ") + s;
      }
    }
    if (lines.empty()) lines = "pip exited with " + std::to_string(report.value("exit_code", 1));
    // pip says "from versions: none" whether the project is missing or the index unreachable;
    // the proxy knows which.
    if (r.proxy && r.proxy->stats().failed > 0) {
      lines = "the package index could not be reached (" + r.proxy->stats().last_failure + ") | " +
              lines;
    } else if (r.proxy && r.proxy->stats().refused > 0) {
      lines = "the proxy refused " + Join(r.proxy->stats().refused_hosts, ", ") +
              " (not an allowed package host; the operator adds one with --allow-host) | " + lines;
    }
    out.error =
        Cap(who + " failed (" + DescribeSources(options_.index) + "): " + lines, kMaxErrorChars);
    return out;
  }
  if (report.contains("installed") && report["installed"].is_array()) {
    for (const json& d : report["installed"]) {
      if (!d.is_object() || out.installed.size() >= 256) continue;
      session::InstalledDist dist{Clean(d.value("name", json()), 128),
                                  Clean(d.value("version", json()), 64),
                                  Clean(d.value("replaced", json()), 64),
                                  {}};
      if (d.contains("modules") && d["modules"].is_array()) {
        for (const json& m : d["modules"]) {
          if (dist.modules.size() < 50) dist.modules.push_back(Clean(m, 100));
        }
      }
      out.installed.push_back(std::move(dist));
    }
  }
  if (report.contains("satisfied") && report["satisfied"].is_array()) {
    for (const json& s : report["satisfied"]) {
      if (out.satisfied.size() < 16) out.satisfied.push_back(Clean(s, 160));
    }
  }
  out.status = out.installed.empty() ? InstallStatus::kAlreadySatisfied : InstallStatus::kInstalled;
  return out;
}

void Installer::Finish(InstallOutcome outcome) {
  std::unique_ptr<Running> done = std::move(running_);
  spdlog::info("install {}: {} in {} ms", done->call->requirement.text,
               session::InstallStatusName(outcome.status), outcome.duration_ms);
  done->call->cb.done(std::move(outcome));
  // The next one starts from the loop: done() may have queued or cancelled installs.
  if (!shutting_down_) loop_->Post([this] { StartNext(); });
}

}  // namespace mcpx::packages
