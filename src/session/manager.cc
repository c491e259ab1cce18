#include "session/manager.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "jail/rlimits.h"
#include "session/output_buffer.h"
#include "session/runtime.h"
#include "util/units.h"
#include "workspace/encoding.h"

namespace mcpx::session {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr size_t kMaxCodeBytes = 4u << 20;
constexpr uint64_t kSpillCapBytes = 8u << 20;  // per stream; beyond, the saved file says so
constexpr int kTickMs = 250;
constexpr int kSweepMs = 30000;
constexpr const char* kOutputsDir = ".mcp-executor/outputs";

std::string ProcessLimitReason(uint64_t limit) {
  return "process limit of " + std::to_string(limit) +
         " reached (runaway fork or thread creation); the sandbox was stopped";
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

Status ValidateSessionName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return InvalidArgument("argument 'session' must be 1 to 64 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) {
      return InvalidArgument(
          "argument 'session' may only contain letters, digits, '_', '-' and "
          "'.', got '" +
          name + "'");
    }
  }
  return Status::Ok();
}

double DurationMs(std::chrono::steady_clock::time_point since) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - since)
                      .count();
  return static_cast<double>(us) / 1000.0;
}

}  // namespace

struct SessionManager::Execution {
  uint64_t id = 0;
  tools::ToolCallPtr call;
  std::string code;
  double timeout_s = 0;
  std::string timeout_note;  // set when timeout_seconds was capped
  std::string out_spill, err_spill;
  std::unique_ptr<OutputBuffer> out, err;
  int64_t start_ms = 0;
  std::chrono::steady_clock::time_point start_tp;  // duration_ms at sub-millisecond precision
  bool started = false;
  std::string forced_status;  // "timeout" or "cancelled" once interrupted
  std::string kill_reason;    // set by whoever decided to kill the kernel
  EventLoop::TimerId timeout_timer = 0, grace_timer = 0, tick_timer = 0;
  std::optional<jail::CgroupUsage> usage_start;
  int64_t last_progress_ms = 0;
  double last_progress = 0;
  std::string state_notice;  // "previous kernel lost" notice for this call
  uint64_t execution_count = 0;
  workspace::DiskMark disk_start;  // the workspace when the cell began (disk_budget.h)
};

struct SessionManager::Session {
  std::string name;
  std::unique_ptr<Kernel> kernel;
  std::deque<std::unique_ptr<Execution>> queue;
  std::unique_ptr<Execution> running;
  uint64_t execution_count = 0;
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
  std::string lost_notice;
  uint64_t kernels_started = 0;
};

json ExecuteOutputSchema() {
  const json nullable_string = {{"type", json::array({"string", "null"})}};
  return {{"type", "object"},
          {"properties",
           {{"session", {{"type", "string"}}},
            {"status",
             {{"type", "string"}, {"enum", {"ok", "error", "timeout", "cancelled", "killed"}}}},
            {"execution_count", {{"type", "integer"}}},
            {"stdout", {{"type", "string"}}},
            {"stderr", {{"type", "string"}}},
            {"result", nullable_string},
            {"error",
             {{"type", json::array({"object", "null"})},
              {"properties",
               {{"type", {{"type", "string"}}},
                {"message", {{"type", "string"}}},
                {"traceback", {{"type", "string"}}}}},
              {"required", {"type", "message", "traceback"}}}},
            {"images",
             {{"type", "array"},
              {"items",
               {{"type", "object"},
                {"properties",
                 {{"mime_type", {{"type", "string"}}},
                  {"width", {{"type", "integer"}}},
                  {"height", {{"type", "integer"}}},
                  {"bytes", {{"type", "integer"}}}}},
                {"required", {"mime_type", "width", "height", "bytes"}}}}}},
            {"truncated", {{"type", "boolean"}}},
            {"duration_ms", {{"type", "number"}}},
            {"cpu_ms", {{"type", json::array({"number", "null"})}}},
            {"peak_memory_bytes", {{"type", json::array({"integer", "null"})}}},
            {"kill_reason", nullable_string},
            {"saved_files", {{"type", "array"}, {"items", {{"type", "string"}}}}},
            {"notes", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
          {"required",
           {"session", "status", "execution_count", "stdout", "stderr", "result", "error", "images",
            "truncated", "duration_ms", "cpu_ms", "peak_memory_bytes", "kill_reason"}}};
}

SessionManager::SessionManager(EventLoop* loop, KernelConfig config,
                               std::shared_ptr<workspace::Workspace> ws, ManagerOptions options)
    : loop_(loop), config_(std::move(config)), ws_(std::move(ws)), options_(options) {
  const auto& l = config_.policy->limits;
  auto disk = workspace::DiskBudget::Create(
      ws_->root_fd(), {l.workspace_bytes, l.workspace_inodes, l.workspace_reserve_bytes,
                       l.workspace_reserve_inodes});
  if (disk.ok()) {
    disk_ = std::move(disk).value();
  } else {
    spdlog::warn("workspace disk budget off: {}", disk.status().ToString());
  }
}

SessionManager::~SessionManager() { Shutdown(); }

void SessionManager::Start() {
  auto prep = StartMplCachePrep(config_);
  if (!prep.ok()) {
    spdlog::warn("{}; the first plot of each kernel will be slow", prep.status().ToString());
  } else if (*prep > 0) {
    WaitForCachePrep(*prep);
  }
  if (cache_prep_pid_ <= 0) RefillPool();
  sweep_timer_ = loop_->AddTimer(milliseconds(kSweepMs), [this] { SweepIdle(); });
}

void SessionManager::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (cache_prep_pid_ > 0) {
    kill(cache_prep_pid_, SIGKILL);
    waitpid(cache_prep_pid_, nullptr, 0);
    cache_prep_pid_ = -1;
  }
  loop_->CancelTimer(sweep_timer_);
  for (auto& [name, s] : sessions_) {
    if (s->running) {
      loop_->CancelTimer(s->running->timeout_timer);
      loop_->CancelTimer(s->running->grace_timer);
      loop_->CancelTimer(s->running->tick_timer);
      s->running->call->Finish(tools::ErrorResult("the server is shutting down"));
    }
    FinishQueuedWithError(*s, "the server is shutting down");
    s->kernel.reset();
  }
  sessions_.clear();
  pool_.clear();
  graveyard_.clear();
}

void SessionManager::WaitForCachePrep(pid_t pid) {
  cache_prep_pid_ = pid;
  int wstatus = 0;
  const pid_t r = waitpid(pid, &wstatus, WNOHANG);
  if (r == 0) {
    loop_->AddTimer(milliseconds(100), [this, pid] { WaitForCachePrep(pid); });
    return;
  }
  cache_prep_pid_ = -1;
  if (r < 0 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    spdlog::warn(
        "preparing the matplotlib font cache failed; the first plot of each kernel "
        "will be slow");
  }
  RefillPool();
}

Result<std::unique_ptr<Kernel>> SessionManager::NewKernel() {
  return Kernel::Start(loop_, config_, next_serial_++);
}

void SessionManager::RefillPool() {
  refill_posted_ = false;
  while (!shutting_down_ && pool_.size() < options_.warm_kernels) {
    auto k = NewKernel();
    if (!k.ok()) {
      ++pool_failures_;
      spdlog::error("cannot start a warm kernel: {}", k.status().ToString());
      return;  // the next session start tries again and reports the error to the caller
    }
    const uint64_t serial = (*k)->serial();
    (*k)->set_callbacks(Kernel::Callbacks{
        nullptr,
        [serial](int, std::string_view data) {
          spdlog::debug("warm kernel {} wrote {} bytes before use", serial, data.size());
        },
        [this, serial](jail::ExitStatus exit) {
          for (auto it = pool_.begin(); it != pool_.end(); ++it) {
            if ((*it)->serial() == serial) {
              const std::string why = (*it)->StartFailure(exit);
              spdlog::warn("warm kernel {} ended before use: {}", serial,
                           why.empty() ? "exit " + std::to_string(exit.ShellCode()) : why);
              Retire(std::move(*it));
              pool_.erase(it);
              break;
            }
          }
        }});
    pool_.push_back(std::move(k).value());
  }
}

std::unique_ptr<Kernel> SessionManager::TakeWarmKernel() {
  if (pool_.empty()) return nullptr;
  // Prefer a kernel that has finished its preload.
  auto it = std::find_if(pool_.begin(), pool_.end(), [](const auto& k) { return k->ready(); });
  if (it == pool_.end()) it = pool_.begin();
  std::unique_ptr<Kernel> k = std::move(*it);
  pool_.erase(it);
  if (!refill_posted_ && !shutting_down_) {
    refill_posted_ = true;
    loop_->Post([this] { RefillPool(); });
  }
  return k;
}

void SessionManager::Retire(std::unique_ptr<Kernel> kernel) {
  if (!kernel) return;
  kernel->set_callbacks({});
  kernel->Kill();
  graveyard_.push_back(std::move(kernel));
  // Destroyed outside the callback that retired it (it may be running inside the kernel).
  loop_->Post([this] { graveyard_.clear(); });
}

Status SessionManager::EnsureKernel(Session& s) {
  if (s.kernel && s.kernel->alive()) return Status::Ok();
  std::unique_ptr<Kernel> k = TakeWarmKernel();
  if (!k) {
    ASSIGN_OR_RETURN(k, NewKernel());
  }
  const std::string name = s.name;
  const uint64_t serial = k->serial();
  k->set_callbacks(Kernel::Callbacks{
      [this, name](const KernelFrame& msg) { OnKernelMessage(name, msg); },
      [this, name](int stream, std::string_view data) { OnKernelOutput(name, stream, data); },
      [this, name, serial](jail::ExitStatus exit) { OnKernelExit(name, serial, exit); }});
  s.kernel = std::move(k);
  ++s.kernels_started;
  return Status::Ok();
}

void SessionManager::Execute(tools::ToolCallPtr call, std::string session, std::string code,
                             std::optional<double> timeout_seconds) {
  if (shutting_down_) return call->Finish(tools::ErrorResult("the server is shutting down"));
  if (auto st = ValidateSessionName(session); !st.ok()) {
    return call->Finish(tools::ErrorResult(st.message()));
  }
  if (code.size() > kMaxCodeBytes) {
    return call->Finish(tools::ErrorResult("argument 'code' is " + std::to_string(code.size()) +
                                           " bytes; the limit is " + MiB(kMaxCodeBytes) +
                                           " (put large data in a file with write_file)"));
  }
  const auto& limits = config_.policy->limits;
  auto e = std::make_unique<Execution>();
  e->timeout_s = limits.timeout_default_s;
  if (timeout_seconds) {
    if (*timeout_seconds <= 0) {
      return call->Finish(tools::ErrorResult("argument 'timeout_seconds' must be positive"));
    }
    e->timeout_s = *timeout_seconds;
    if (e->timeout_s > limits.timeout_max_s) {
      e->timeout_s = limits.timeout_max_s;
      e->timeout_note =
          "timeout_seconds capped at " + std::to_string(limits.timeout_max_s) + " s by the policy";
    }
  }

  auto it = sessions_.find(session);
  const bool created = it == sessions_.end();
  if (created) {
    if (sessions_.size() >= limits.max_sessions) {
      return call->Finish(tools::ErrorResult(
          "session limit reached: " + std::to_string(limits.max_sessions) +
          " sessions are open (policy max_sessions); end one with reset_session (list_sessions "
          "shows them) or reuse an existing session name"));
    }
    auto s = std::make_unique<Session>();
    s->name = session;
    s->created_ms = s->last_used_ms = EventLoop::NowMs();
    it = sessions_.emplace(session, std::move(s)).first;
  }
  Session& s = *it->second;
  if (auto st = EnsureKernel(s); !st.ok()) {
    const std::string msg = "cannot start a Python kernel: " + st.ToString();
    spdlog::error("session {}: {}", session, msg);
    if (created && s.queue.empty() && !s.running) sessions_.erase(it);
    return call->Finish(tools::ErrorResult(msg));
  }

  e->id = next_exec_id_++;
  e->call = call;
  e->code = std::move(code);
  const uint64_t id = e->id;
  call->OnCancel([this, session, id] { OnCancel(session, id); });
  s.queue.push_back(std::move(e));
  Pump(s);
}

void SessionManager::Pump(Session& s) {
  if (s.running || s.queue.empty() || !s.kernel || !s.kernel->alive() || !s.kernel->ready()) {
    return;
  }
  Begin(s);
}

void SessionManager::Begin(Session& s) {
  s.running = std::move(s.queue.front());
  s.queue.pop_front();
  Execution& e = *s.running;
  const auto& limits = config_.policy->limits;
  e.started = true;
  e.start_ms = e.last_progress_ms = EventLoop::NowMs();
  e.start_tp = std::chrono::steady_clock::now();
  e.execution_count = ++s.execution_count;
  e.state_notice = std::exchange(s.lost_notice, "");
  e.out = std::make_unique<OutputBuffer>(
      limits.output_bytes, kSpillCapBytes,
      [&e]() -> Result<std::function<Status(std::string_view)>> {
        return std::function<Status(std::string_view)>([&e](std::string_view d) {
          e.out_spill.append(d);
          return Status::Ok();
        });
      });
  e.err = std::make_unique<OutputBuffer>(
      limits.output_bytes, kSpillCapBytes,
      [&e]() -> Result<std::function<Status(std::string_view)>> {
        return std::function<Status(std::string_view)>([&e](std::string_view d) {
          e.err_spill.append(d);
          return Status::Ok();
        });
      });
  if (auto u = s.kernel->Usage(); u.ok()) e.usage_start = *u;
  if (disk_) e.disk_start = disk_->Mark();

  json req = {{"id", e.id},
              {"op", "execute"},
              {"code", e.code},
              {"execution_count", e.execution_count},
              {"limits",
               {{"max_images", limits.max_images},
                {"image_max_bytes", limits.image_bytes},
                {"image_max_pixels", kImageMaxPixels}}},
              {"output_dir", std::string("/workspace/") + kOutputsDir}};
  e.code.clear();
  e.code.shrink_to_fit();
  if (auto st = s.kernel->Send(req); !st.ok()) {
    e.kill_reason = "could not send the code to the kernel: " + st.ToString();
    s.kernel->Kill();  // the exit completes the call
    return;
  }
  const std::string name = s.name;
  const uint64_t id = e.id;
  e.timeout_timer = loop_->AddTimer(milliseconds(static_cast<int64_t>(e.timeout_s * 1000)),
                                    [this, name, id] { OnTimeout(name, id); });
  e.tick_timer = loop_->AddTimer(milliseconds(kTickMs), [this, name, id] { Tick(name, id); });
}

void SessionManager::OnKernelMessage(const std::string& name, const KernelFrame& msg) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  if (msg.kind == KernelFrame::Kind::kReady) {
    if (!msg.failed_preloads.empty()) {
      std::string what;
      for (const auto& f : msg.failed_preloads) {
        what += (what.empty() ? "" : "; ") + f.module + ": " + f.error;
      }
      spdlog::warn("session {}: preload failures: {}", name, what);
    }
    return Pump(s);
  }
  if (!s.running) return;
  if (msg.id == s.running->id &&
      (msg.kind == KernelFrame::Kind::kResult || msg.kind == KernelFrame::Kind::kError)) {
    s.kernel->DrainOutput();
    Complete(s, &msg, std::nullopt);
  }
}

void SessionManager::OnKernelOutput(const std::string& name, int stream, std::string_view data) {
  auto it = sessions_.find(name);
  if (it == sessions_.end() || !it->second->running) {
    spdlog::debug("session {}: {} bytes of output outside any execution", name, data.size());
    return;
  }
  Execution& e = *it->second->running;
  (stream == 2 ? e.err : e.out)->Append(data);
}

void SessionManager::OnKernelExit(const std::string& name, uint64_t serial, jail::ExitStatus exit) {
  auto it = sessions_.find(name);
  if (it == sessions_.end() || !it->second->kernel || it->second->kernel->serial() != serial) {
    return;
  }
  Session& s = *it->second;
  if (std::string why = s.kernel->StartFailure(exit); !why.empty() && !s.running) {
    // A kernel that never started would fail the same way again: the waiting calls get the
    // reason instead of an endless series of restarts.
    spdlog::error("session {}: the Python kernel did not start: {}", name, why);
    Retire(std::move(s.kernel));
    FinishQueuedWithError(s, "cannot start a Python kernel: " + why +
                                 ". The next call to this session starts a new one.");
    if (s.execution_count == 0) sessions_.erase(it);
    return;
  }
  std::string reason;
  if (s.running) {
    reason = KillReason(s, *s.running, exit);
    s.running->kill_reason = reason;
    Complete(s, nullptr, exit);
  } else {
    reason = "the kernel ended while idle (exit status " + std::to_string(exit.ShellCode()) + ")";
  }
  s.lost_notice = "the previous Python kernel of this session was lost (" + reason +
                  "); this is a fresh kernel: variables and imports from before are gone";
  Retire(std::move(s.kernel));
  if (!s.queue.empty()) {
    if (auto st = EnsureKernel(s); !st.ok()) {
      FinishQueuedWithError(s, "cannot restart the Python kernel: " + st.ToString());
    }
  }
}

std::string SessionManager::KillReason(Session& s, const Execution& e,
                                       const std::optional<jail::ExitStatus>& exit) const {
  if (!e.kill_reason.empty()) return e.kill_reason;
  if (s.kernel && !s.kernel->protocol_error().empty()) return s.kernel->protocol_error();
  const auto& limits = config_.policy->limits;
  if (s.kernel && s.kernel->has_cgroup()) {
    if (auto u = s.kernel->Usage(); u.ok()) {
      const uint64_t oom0 = e.usage_start ? e.usage_start->oom_kills : 0;
      if (u->oom_kills > oom0) return "memory limit " + MiB(limits.memory_bytes) + " exceeded";
    }
  }
  if (!exit) return "killed";
  if (exit->task_limit) {
    return ProcessLimitReason(jail::ProcessLimit(limits));
  }
  int sig = exit->signal;
  if (sig == 0 && exit->code > 128 && exit->code < 128 + 65) sig = exit->code - 128;
  if (sig == SIGKILL && !s.kernel->has_cgroup()) {
    return "killed by SIGKILL (likely the memory limit " + MiB(limits.memory_bytes) +
           " enforced by RLIMIT_AS, or the host's OOM killer)";
  }
  if (sig != 0) {
    std::string what = "the Python interpreter was killed by " + SignalName(sig);
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT) {
      what += " (a crash, usually in native code such as ctypes or a C extension)";
    }
    return what;
  }
  return "the Python interpreter exited with code " + std::to_string(exit->code) +
         " (os._exit() or a fatal error)";
}

void SessionManager::OnTimeout(const std::string& name, uint64_t exec_id) {
  auto it = sessions_.find(name);
  if (it == sessions_.end() || !it->second->running || it->second->running->id != exec_id) return;
  Execution& e = *it->second->running;
  e.timeout_timer = 0;
  Interrupt(*it->second, "timeout",
            "did not stop within " + std::to_string(config_.policy->limits.interrupt_grace_ms) +
                " ms of the interrupt sent at the " + std::to_string(e.timeout_s) +
                " s timeout (code that ignores SIGINT, e.g. a long C call)");
}

void SessionManager::OnCancel(const std::string& name, uint64_t exec_id) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  for (auto q = s.queue.begin(); q != s.queue.end(); ++q) {
    if ((*q)->id == exec_id) {
      (*q)->call->Finish(tools::ErrorResult("cancelled"));  // sends nothing: it was cancelled
      s.queue.erase(q);
      return;
    }
  }
  if (s.running && s.running->id == exec_id) {
    Interrupt(s, "cancelled",
              "did not stop within " + std::to_string(config_.policy->limits.interrupt_grace_ms) +
                  " ms of the interrupt sent on cancellation");
  }
}

void SessionManager::Interrupt(Session& s, const std::string& status, const std::string& why) {
  Execution& e = *s.running;
  if (!e.forced_status.empty()) return;  // already interrupting
  e.forced_status = status;
  if (s.kernel) (void)s.kernel->Interrupt();
  const std::string name = s.name;
  const uint64_t id = e.id;
  e.grace_timer = loop_->AddTimer(
      milliseconds(config_.policy->limits.interrupt_grace_ms), [this, name, id, why] {
        auto it = sessions_.find(name);
        if (it == sessions_.end() || !it->second->running || it->second->running->id != id) {
          return;
        }
        it->second->running->grace_timer = 0;
        it->second->running->kill_reason = why;
        if (it->second->kernel) it->second->kernel->Kill();
      });
}

void SessionManager::Tick(const std::string& name, uint64_t exec_id) {
  auto it = sessions_.find(name);
  if (it == sessions_.end() || !it->second->running || it->second->running->id != exec_id) return;
  Session& s = *it->second;
  Execution& e = *s.running;
  e.tick_timer =
      loop_->AddTimer(milliseconds(kTickMs), [this, name, exec_id] { Tick(name, exec_id); });
  // A fork bomb does not kill the kernel: forks just fail. Stop it before it burns the timeout.
  if (s.kernel && s.kernel->has_cgroup() && e.kill_reason.empty()) {
    if (auto u = s.kernel->Usage();
        u.ok() && e.usage_start && u->pids_limit_hits > e.usage_start->pids_limit_hits) {
      e.kill_reason = ProcessLimitReason(config_.policy->limits.pids);
      s.kernel->Kill();
      return;
    }
  }
  if (disk_ && s.kernel && e.kill_reason.empty()) {
    if (auto why = disk_->Check(e.disk_start)) {
      e.kill_reason = std::move(*why);
      s.kernel->Kill();
      return;
    }
  }
  if (!e.call->wants_progress()) return;
  const int64_t now = EventLoop::NowMs();
  std::string fresh = e.out->TakeFresh(4096);
  std::string fresh_err = e.err->TakeFresh(4096);
  if (!fresh_err.empty()) fresh += (fresh.empty() ? "" : "\n") + fresh_err;
  if (fresh.empty() && now - e.last_progress_ms < 1000) return;
  const double elapsed = static_cast<double>(now - e.start_ms) / 1000.0;
  const double progress = std::max(elapsed, e.last_progress + 0.001);
  e.last_progress = progress;
  e.last_progress_ms = now;
  if (fresh.empty()) {
    char buf[64];
    snprintf(buf, sizeof buf, "running for %.0f s", elapsed);
    fresh = buf;
  }
  e.call->Progress(progress, e.timeout_s, std::move(fresh));
}

void SessionManager::FinishQueuedWithError(Session& s, const std::string& message) {
  while (!s.queue.empty()) {
    s.queue.front()->call->Finish(tools::ErrorResult(message));
    s.queue.pop_front();
  }
}

void SessionManager::Complete(Session& s, const KernelFrame* reply,
                              std::optional<jail::ExitStatus> exit) {
  std::unique_ptr<Execution> owned = std::move(s.running);
  Execution& e = *owned;
  loop_->CancelTimer(e.timeout_timer);
  loop_->CancelTimer(e.grace_timer);
  loop_->CancelTimer(e.tick_timer);
  const auto& limits = config_.policy->limits;
  const int64_t now = EventLoop::NowMs();
  s.last_used_ms = now;

  std::string status;
  json error = nullptr;
  json result = nullptr;
  json images = json::array();
  json image_blocks = json::array();
  json saved = json::array();
  json notes = json::array();
  std::optional<double> cpu_ms;
  std::optional<uint64_t> peak;

  if (reply != nullptr) {
    status = reply->status;
    if (reply->result) result = *reply->result;
    if (reply->error) {
      error = {{"type", reply->error->type},
               {"message", reply->error->message},
               {"traceback", reply->error->traceback}};
    }
    for (const auto& img : reply->images) {
      images.push_back({{"mime_type", "image/png"},
                        {"width", img.width},
                        {"height", img.height},
                        {"bytes", img.bytes}});
      image_blocks.push_back({{"type", "image"}, {"data", img.data}, {"mimeType", "image/png"}});
    }
    if (reply->dropped_images > 0) {
      notes.push_back(std::to_string(reply->dropped_images) +
                      " image(s) from the kernel were not well-formed PNGs within the policy's "
                      "caps (bytes, at most " +
                      std::to_string(kImageMaxPixels) + " pixels, " +
                      std::to_string(kImageMaxSide) + " px a side) and were dropped");
    }
    for (const auto& p : reply->saved_images) saved.push_back(p);
    for (const auto& n : reply->notes) notes.push_back(n);
    cpu_ms = reply->cpu_ms;
    if (!e.forced_status.empty()) status = e.forced_status;
  } else {
    status = "killed";
  }

  if (s.kernel && s.kernel->has_cgroup()) {
    if (auto u = s.kernel->Usage(); u.ok()) {
      const uint64_t cpu0 = e.usage_start ? e.usage_start->cpu_usec : 0;
      cpu_ms = static_cast<double>(u->cpu_usec - std::min(cpu0, u->cpu_usec)) / 1000.0;
      peak = std::max(u->memory_peak_bytes, u->memory_current_bytes);
      // A fork bomb that ended within the cell still leaves the pids limit hit behind.
      if (status != "killed" && e.usage_start &&
          u->pids_limit_hits > e.usage_start->pids_limit_hits && e.kill_reason.empty()) {
        e.kill_reason = ProcessLimitReason(limits.pids);
        status = "killed";
        s.kernel->Kill();
      }
    }
  }

  json kill_reason = nullptr;
  if (status == "killed") {
    kill_reason = e.kill_reason.empty() ? std::string("killed") : e.kill_reason;
  }

  // Long output: head and tail inline, everything in a workspace file.
  const std::string base =
      std::string(kOutputsDir) + "/" + s.name + "-" + std::to_string(e.execution_count);
  auto stream_text = [&](OutputBuffer& buf, const std::string& spill, const char* suffix) {
    if (!buf.truncated()) return buf.Text("");
    std::string where = base + suffix;
    if (buf.spilled_bytes() > 0) {
      const Status room = disk_ ? disk_->RoomFor(spill.size()) : Status::Ok();
      auto w =
          room.ok() ? ws_->WriteFileAtomic(where, spill) : Result<workspace::WriteResult>(room);
      if (w.ok()) {
        saved.push_back(where);
      } else {
        spdlog::warn("cannot save long output to {}: {}", where, w.status().ToString());
        where.clear();
      }
    }
    return buf.Text(where);
  };
  const std::string out = stream_text(*e.out, e.out_spill, "-stdout.txt");
  const std::string err = stream_text(*e.err, e.err_spill, "-stderr.txt");
  const bool truncated = e.out->truncated() || e.err->truncated();
  if (!e.timeout_note.empty()) notes.push_back(e.timeout_note);
  if (!e.state_notice.empty()) notes.push_back(e.state_notice);

  json structured = {{"session", s.name},
                     {"status", status},
                     {"execution_count", e.execution_count},
                     {"stdout", out},
                     {"stderr", err},
                     {"result", result},
                     {"error", error},
                     {"images", images},
                     {"truncated", truncated},
                     {"duration_ms", DurationMs(e.start_tp)},
                     {"cpu_ms", cpu_ms ? json(*cpu_ms) : json(nullptr)},
                     {"peak_memory_bytes", peak ? json(*peak) : json(nullptr)},
                     {"kill_reason", kill_reason},
                     {"saved_files", saved},
                     {"notes", notes}};

  // The readable text block, for clients that ignore structuredContent.
  std::string text;
  auto add = [&text](const std::string& part) {
    if (part.empty()) return;
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += part;
  };
  for (const auto& n : notes) add("[note] " + n.get<std::string>());
  add(out);
  if (!err.empty()) add("[stderr]\n" + err);
  if (result.is_string()) {
    add("Out[" + std::to_string(e.execution_count) + "]: " + result.get<std::string>());
  }
  if (error.is_object()) {
    const std::string tb = error["traceback"].get<std::string>();
    add(tb.empty() ? error["type"].get<std::string>() + ": " + error["message"].get<std::string>()
                   : tb);
  }
  if (status == "timeout") {
    add("[status] timeout: interrupted after " + std::to_string(e.timeout_s) +
        " s; the session keeps its state");
  } else if (status == "cancelled") {
    add("[status] cancelled: interrupted; the session keeps its state");
  } else if (status == "killed") {
    add("[status] killed: " + kill_reason.get<std::string>() +
        "; the session's state is lost and the next call starts a fresh kernel");
  }
  for (const auto& p : saved) add("[saved] " + p.get<std::string>());
  if (text.empty()) text = "(no output)";

  json content = json::array({tools::TextContent(text)});
  for (auto& b : image_blocks) content.push_back(std::move(b));
  e.call->Finish(json{{"content", std::move(content)},
                      {"structuredContent", std::move(structured)},
                      {"isError", status != "ok"}});

  if (!shutting_down_) {
    const std::string name = s.name;
    loop_->Post([this, name] {
      auto it = sessions_.find(name);
      if (it != sessions_.end()) Pump(*it->second);
    });
  }
}

json SessionManager::ListSessions() {
  const int64_t now = EventLoop::NowMs();
  json list = json::array();
  for (const auto& [name, s] : sessions_) {
    std::string state = "idle";
    if (!s->kernel || !s->kernel->alive()) {
      state = "stopped";
    } else if (!s->kernel->ready()) {
      state = "starting";
    } else if (s->running) {
      state = "busy";
    }
    json memory = nullptr, peak = nullptr, cpu = nullptr;
    if (s->kernel && s->kernel->alive() && s->kernel->has_cgroup()) {
      if (auto u = s->kernel->Usage(); u.ok()) {
        memory = u->memory_current_bytes;
        peak = std::max(u->memory_peak_bytes, u->memory_current_bytes);
        cpu = static_cast<double>(u->cpu_usec) / 1000.0;
      }
    }
    list.push_back({{"session", name},
                    {"state", state},
                    {"age_seconds", static_cast<double>(now - s->created_ms) / 1000.0},
                    {"idle_seconds", static_cast<double>(now - s->last_used_ms) / 1000.0},
                    {"execution_count", s->execution_count},
                    {"queued", s->queue.size()},
                    {"memory_bytes", memory},
                    {"peak_memory_bytes", peak},
                    {"cpu_ms", cpu},
                    {"kernel_restarts", s->kernels_started > 0 ? s->kernels_started - 1 : 0}});
  }
  return {{"sessions", list},
          {"max_sessions", config_.policy->limits.max_sessions},
          {"warm_kernels", pool_.size()},
          {"memory_limit_bytes", config_.policy->limits.memory_bytes}};
}

bool SessionManager::Reset(const std::string& name) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) return false;
  Session& s = *it->second;
  if (s.running) {
    s.running->kill_reason = "the session was reset with reset_session";
    Complete(s, nullptr, std::nullopt);
  }
  FinishQueuedWithError(s, "the session '" + name + "' was reset before this call ran");
  Retire(std::move(s.kernel));
  sessions_.erase(it);
  return true;
}

void SessionManager::SweepIdle() {
  sweep_timer_ = loop_->AddTimer(milliseconds(kSweepMs), [this] { SweepIdle(); });
  const int64_t now = EventLoop::NowMs();
  const int64_t idle_ms = static_cast<int64_t>(config_.policy->limits.idle_timeout_s) * 1000;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& s = *it->second;
    if (!s.running && s.queue.empty() && now - s.last_used_ms > idle_ms) {
      spdlog::info("session {}: idle for {} s, stopping its kernel", s.name,
                   (now - s.last_used_ms) / 1000);
      Retire(std::move(s.kernel));
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace mcpx::session
