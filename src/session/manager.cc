#include "session/manager.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include <spdlog/spdlog.h>

#include "session/kill_reason.h"
#include "session/manager_state.h"
#include "session/output_buffer.h"
#include "util/units.h"

namespace mcpx::session {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr size_t kMaxCodeBytes = 4u << 20;
constexpr uint64_t kSpillCapBytes = 8u << 20;  // per stream; beyond, the saved file says so
constexpr int kTickMs = 250;
constexpr int kSweepMs = 30000;

Status ShuttingDown() { return Status(Code::kUnavailable, "the server is shutting down"); }

double DurationMs(std::chrono::steady_clock::time_point since) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - since)
                      .count();
  return static_cast<double>(us) / 1000.0;
}

}  // namespace

SessionManager::SessionManager(EventLoop* loop, std::unique_ptr<KernelFactory> factory,
                               std::shared_ptr<workspace::Workspace> ws, ManagerOptions options)
    : loop_(loop),
      factory_(std::move(factory)),
      ws_(std::move(ws)),
      options_(std::move(options)),
      pool_(loop, factory_.get(), options_.warm_kernels) {
  const auto& l = options_.settings;
  auto disk = workspace::DiskBudget::Create(
      ws_->root_fd(), {l.workspace_bytes, l.workspace_inodes, l.workspace_reserve_bytes,
                       l.workspace_reserve_inodes});
  saved_ = std::make_unique<SavedOutputFiles>(ws_, kOutputsDir, l.saved_outputs_session_bytes,
                                              l.saved_outputs_bytes);
  if (disk.ok()) {
    disk_ = std::move(disk).value();
  } else {
    spdlog::warn("workspace disk budget off: {}", disk.status().ToString());
  }
  if (l.record_notebook) notebooks_ = std::make_unique<NotebookRecorder>(loop_, ws_, disk_.get());
}

SessionManager::~SessionManager() { Shutdown(); }

void SessionManager::Start() {
  saved_->Adopt();
  pool_.Start();
  sweep_timer_ = loop_->AddTimer(milliseconds(kSweepMs), [this] { SweepIdle(); });
}

void SessionManager::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  loop_->CancelTimer(sweep_timer_);
  // Out of the map first: a done() that calls back in finds no session.
  auto sessions = std::exchange(sessions_, {});
  for (auto& [name, s] : sessions) {
    s->kernel.reset();
    if (s->running) {
      loop_->CancelTimer(s->running->timeout_timer);
      loop_->CancelTimer(s->running->grace_timer);
      loop_->CancelTimer(s->running->tick_timer);
      s->running->cb.done(ShuttingDown());
    }
    FailAll(std::exchange(s->queue, {}), ShuttingDown());
  }
  if (notebooks_) notebooks_->Flush();
  pool_.Shutdown();
}

SessionManager::Session* SessionManager::Find(const std::string& name) {
  auto it = sessions_.find(name);
  return it == sessions_.end() ? nullptr : it->second.get();
}

SessionManager::Execution* SessionManager::Running(const std::string& name, uint64_t exec_id) {
  Session* s = Find(name);
  return s != nullptr && s->running && s->running->id == exec_id ? s->running.get() : nullptr;
}

Status SessionManager::EnsureKernel(Session& s) {
  if (s.kernel && s.kernel->alive()) return Status::Ok();
  ASSIGN_OR_RETURN(std::unique_ptr<Kernel> k, pool_.Take());
  const std::string name = s.name;
  const uint64_t serial = k->serial();
  k->set_callbacks(Kernel::Callbacks{
      [this, name](const KernelFrame& msg) { OnKernelMessage(name, msg); },
      [this, name](int stream, std::string_view data) { OnKernelOutput(name, stream, data); },
      [this, name, serial](jail::ExitStatus exit) { OnKernelExit(name, serial, exit); }});
  s.kernel = std::move(k);
  s.imports.clear();
  s.installing = false;
  ++s.kernels_started;
  return Status::Ok();
}

ExecutionRef SessionManager::Execute(ExecuteRequest request, ExecuteCallbacks cb) {
  if (shutting_down_) return cb.done(ShuttingDown()), ExecutionRef{};
  if (auto st = ValidateSessionName(request.session); !st.ok()) return cb.done(st), ExecutionRef{};
  if (request.code.size() > kMaxCodeBytes) {
    cb.done(InvalidArgument("argument 'code' is " + std::to_string(request.code.size()) +
                            " bytes; the limit is " + MiB(kMaxCodeBytes) +
                            " (put large data in a file with write_file)"));
    return {};
  }
  const auto& limits = options_.settings;
  auto e = std::make_unique<Execution>();
  e->timeout_s = limits.timeout_default_s;
  if (request.timeout_seconds) {
    if (!(*request.timeout_seconds > 0)) {  // NaN too
      cb.done(InvalidArgument("argument 'timeout_seconds' must be positive"));
      return {};
    }
    e->timeout_s = *request.timeout_seconds;
    if (e->timeout_s > limits.timeout_max_s) {
      e->timeout_s = limits.timeout_max_s;
      e->timeout_note =
          "timeout_seconds capped at " + std::to_string(limits.timeout_max_s) + " s by the policy";
    }
  }

  const std::string& session = request.session;
  auto it = sessions_.find(session);
  const bool created = it == sessions_.end();
  if (created) {
    if (sessions_.size() >= limits.max_sessions) {
      cb.done(Status(Code::kResourceExhausted,
                     "session limit reached: " + std::to_string(limits.max_sessions) +
                         " sessions are open (policy max_sessions); end one with reset_session "
                         "(list_sessions shows them) or reuse an existing session name"));
      return {};
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
    cb.done(Status(st.code(), msg, st.err()));
    return {};
  }

  e->id = next_exec_id_++;
  e->cb = std::move(cb);
  e->code = std::move(request.code);
  const ExecutionRef ref{session, e->id};
  s.queue.push_back(std::move(e));
  Pump(s);
  return ref;
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
  const auto& limits = options_.settings;
  e.start_ms = e.last_progress_ms = EventLoop::NowMs();
  e.start_tp = std::chrono::steady_clock::now();
  e.execution_count = ++s.execution_count;
  e.state_notice = std::exchange(s.lost_notice, "");
  for (int stream : {1, 2}) {
    std::string* spill = &e.spill[stream];
    e.out[stream] = std::make_unique<OutputBuffer>(
        limits.output_bytes, kSpillCapBytes,
        [spill]() -> Result<std::function<Status(std::string_view)>> {
          return std::function<Status(std::string_view)>([spill](std::string_view d) {
            spill->append(d);
            return Status::Ok();
          });
        });
  }
  if (auto u = s.kernel->Usage(); u.ok()) e.usage_start = *u;
  if (disk_) e.disk_start = disk_->Mark();

  json req = {{"id", e.id},
              {"op", "execute"},
              {"code", e.code},
              {"execution_count", e.execution_count},
              {"limits",
               {{"max_images", limits.max_images},
                {"image_max_bytes", limits.image_bytes},
                {"image_max_side", limits.image_px},
                {"image_max_pixels", kImageMaxPixels},
                {"max_result_chars", limits.output_bytes}}},
              {"output_dir", InSandbox(kOutputsDir)}};
  if (packages_generation_ != 0) req["packages_generation"] = packages_generation_;
  if (notebooks_) notebooks_->Started(s.name, std::move(e.code));
  e.code.clear();
  e.code.shrink_to_fit();
  if (auto st = s.kernel->Send(req); !st.ok()) {
    e.kill_reason = "could not send the code to the kernel: " + st.ToString();
    s.kernel->Kill();  // the exit completes the call
    return;
  }
  const std::string name = s.name;
  const uint64_t id = e.id;
  ArmTimeout(e, name, static_cast<int64_t>(e.timeout_s * 1000));
  e.tick_timer = loop_->AddTimer(milliseconds(kTickMs), [this, name, id] { Tick(name, id); });
}

void SessionManager::OnKernelMessage(const std::string& name, const KernelFrame& msg) {
  Session* s = Find(name);
  if (s == nullptr) return;
  if (msg.kind == KernelFrame::Kind::kReady) {
    if (!msg.failed_preloads.empty()) {
      std::string what;
      for (const auto& f : msg.failed_preloads) {
        what += (what.empty() ? "" : "; ") + f.module + ": " + f.error;
      }
      spdlog::warn("session {}: preload failures: {}", name, what);
    }
    return Pump(*s);
  }
  if (!s->running) return;
  if (msg.kind == KernelFrame::Kind::kInstall) return OnInstallFrame(*s, msg);
  if (msg.kind == KernelFrame::Kind::kResult) {
    for (const std::string& m : msg.imports) {
      if (s->imports.size() >= kMaxTrackedImports) break;
      s->imports.insert(m);
    }
  }
  if (msg.id == s->running->id &&
      (msg.kind == KernelFrame::Kind::kResult || msg.kind == KernelFrame::Kind::kError)) {
    s->kernel->DrainOutput();
    Complete(*s, &msg).Deliver();
  }
}

void SessionManager::OnKernelOutput(const std::string& name, int stream, std::string_view data) {
  Session* s = Find(name);
  if (s == nullptr || !s->running) {
    spdlog::debug("session {}: {} bytes of output outside any execution", name, data.size());
    return;
  }
  s->running->out[stream == 2 ? 2 : 1]->Append(data);
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
    pool_.Retire(std::move(s.kernel));
    auto queued = std::exchange(s.queue, {});
    if (s.execution_count == 0) sessions_.erase(it);
    return FailAll(
        std::move(queued),
        Status(Code::kUnavailable, "cannot start a Python kernel: " + why +
                                       ". The next call to this session starts a new one."));
  }
  std::string reason;
  std::optional<Finished> finished;
  if (s.running) {
    reason = KillReasonFor(s, *s.running, exit);
    s.running->kill_reason = reason;
    finished = Complete(s, nullptr);
  } else if (!s.kill_reason.empty()) {
    reason = s.kill_reason;  // the manager stopped it after the cell's reply
  } else {
    reason = "the kernel ended while idle (exit status " + std::to_string(exit.ShellCode()) + ")";
  }
  s.kill_reason.clear();
  s.lost_notice = "the previous Python kernel of this session was lost (" + reason +
                  "); this is a fresh kernel: variables and imports from before are gone";
  if (notebooks_) notebooks_->StateLost(name, reason);
  pool_.Retire(std::move(s.kernel));
  Status restart = s.queue.empty() ? Status::Ok() : EnsureKernel(s);
  auto failed =
      restart.ok() ? std::deque<std::unique_ptr<Execution>>{} : std::exchange(s.queue, {});
  // Nothing of `s` is used past here: done() may call back in and reset the session.
  if (finished) finished->Deliver();
  FailAll(std::move(failed),
          Status(restart.code(), "cannot restart the Python kernel: " + restart.ToString()));
}

std::string SessionManager::KillReasonFor(const Session& s, const Execution& e,
                                          const std::optional<jail::ExitStatus>& exit) const {
  KillFacts facts;
  facts.decided = e.kill_reason;
  facts.exit = exit;
  if (s.kernel) {
    facts.protocol_error = s.kernel->protocol_error();
    facts.has_cgroup = s.kernel->has_cgroup();
    if (auto u = s.kernel->Usage(); u.ok()) {
      facts.oom_killed = u->oom_kills > (e.usage_start ? e.usage_start->oom_kills : 0);
    }
  }
  return KillReason(facts, options_.sandbox);
}

void SessionManager::ArmTimeout(Execution& e, const std::string& name, int64_t ms) {
  const uint64_t id = e.id;
  e.timeout_at_ms = EventLoop::NowMs() + ms;
  e.timeout_timer = loop_->AddTimer(milliseconds(ms), [this, name, id] { OnTimeout(name, id); });
}

void SessionManager::OnTimeout(const std::string& name, uint64_t exec_id) {
  Execution* e = Running(name, exec_id);
  if (e == nullptr) return;
  e->timeout_timer = 0;
  Interrupt(*Find(name), ExecStatus::kTimeout,
            "did not stop within " + std::to_string(options_.settings.interrupt_grace_ms) +
                " ms of the interrupt sent at the " + std::to_string(e->timeout_s) +
                " s timeout (code that ignores SIGINT, e.g. a long C call)");
}

void SessionManager::Cancel(const ExecutionRef& ref) {
  Session* s = Find(ref.session);
  if (s == nullptr || ref.id == 0) return;
  for (auto q = s->queue.begin(); q != s->queue.end(); ++q) {
    if ((*q)->id == ref.id) {
      std::unique_ptr<Execution> e = std::move(*q);
      s->queue.erase(q);
      e->cb.done(Status(Code::kCancelled, "cancelled"));
      return;
    }
  }
  if (s->running && s->running->id == ref.id) {
    Interrupt(*s, ExecStatus::kCancelled,
              "did not stop within " + std::to_string(options_.settings.interrupt_grace_ms) +
                  " ms of the interrupt sent on cancellation");
  }
}

void SessionManager::Interrupt(Session& s, ExecStatus status, const std::string& why) {
  Execution& e = *s.running;
  if (e.forced_status) return;  // already interrupting
  e.forced_status = status;
  if (s.kernel) (void)s.kernel->Interrupt();
  const std::string name = s.name;
  const uint64_t id = e.id;
  e.grace_timer =
      loop_->AddTimer(milliseconds(options_.settings.interrupt_grace_ms), [this, name, id, why] {
        Execution* running = Running(name, id);
        if (running == nullptr) return;
        running->grace_timer = 0;
        running->kill_reason = why;
        Session* owner = Find(name);
        if (owner != nullptr && owner->kernel) owner->kernel->Kill();
      });
}

void SessionManager::Tick(const std::string& name, uint64_t exec_id) {
  Execution* running = Running(name, exec_id);
  if (running == nullptr) return;
  Session& s = *Find(name);
  Execution& e = *running;
  e.tick_timer =
      loop_->AddTimer(milliseconds(kTickMs), [this, name, exec_id] { Tick(name, exec_id); });
  // An idle kernel ignores SIGINT, so one that came before the kernel read the cell (a cancel
  // right after the call) was lost: repeat it until the cell ends or the grace period does.
  if (e.forced_status && s.kernel) (void)s.kernel->Interrupt();
  // A fork bomb does not kill the kernel: forks just fail. Stop it before it burns the timeout.
  if (s.kernel && s.kernel->has_cgroup() && e.kill_reason.empty()) {
    if (auto u = s.kernel->Usage();
        u.ok() && e.usage_start && u->pids_limit_hits > e.usage_start->pids_limit_hits) {
      e.kill_reason = ProcessLimitReason(options_.sandbox.pids);
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
  if (!e.cb.progress) return;
  const int64_t now = EventLoop::NowMs();
  std::string fresh = e.out[1]->TakeFresh(4096);
  std::string fresh_err = e.out[2]->TakeFresh(4096);
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
  e.cb.progress(progress, e.timeout_s, std::move(fresh));
}

void SessionManager::FailAll(std::deque<std::unique_ptr<Execution>> calls, const Status& why) {
  for (auto& e : calls) e->cb.done(why);
}

SessionManager::Finished SessionManager::Complete(Session& s, const KernelFrame* reply) {
  std::unique_ptr<Execution> owned = std::move(s.running);
  Execution& e = *owned;
  loop_->CancelTimer(e.timeout_timer);
  loop_->CancelTimer(e.grace_timer);
  loop_->CancelTimer(e.tick_timer);
  s.last_used_ms = EventLoop::NowMs();

  ExecOutcome out;
  out.session = s.name;
  out.execution_count = e.execution_count;
  out.timeout_s = e.timeout_s;
  if (reply != nullptr) {
    out.status = reply->status == "ok" ? ExecStatus::kOk : ExecStatus::kError;
    out.result = reply->result;
    out.error = reply->error;
    out.images = reply->images;
    if (reply->dropped_images > 0) {
      out.notes.push_back(std::to_string(reply->dropped_images) +
                          " image(s) from the kernel were not well-formed PNGs within the "
                          "policy's caps (bytes, at most " +
                          std::to_string(kImageMaxPixels) + " pixels, " +
                          std::to_string(kImageMaxSide) + " px a side) and were dropped");
    }
    out.saved_files = reply->saved_images;
    out.notes.insert(out.notes.end(), reply->notes.begin(), reply->notes.end());
    out.cpu_ms = reply->cpu_ms;
    if (e.forced_status) out.status = *e.forced_status;
  } else {
    out.status = ExecStatus::kKilled;
  }

  if (s.kernel && s.kernel->has_cgroup()) {
    if (auto u = s.kernel->Usage(); u.ok()) {
      const uint64_t cpu0 = e.usage_start ? e.usage_start->cpu_usec : 0;
      out.cpu_ms = static_cast<double>(u->cpu_usec - std::min(cpu0, u->cpu_usec)) / 1000.0;
      out.peak_memory_bytes = std::max(u->memory_peak_bytes, u->memory_current_bytes);
      // A fork bomb that ended within the cell still leaves the pids limit hit behind.
      if (out.status != ExecStatus::kKilled && e.usage_start &&
          u->pids_limit_hits > e.usage_start->pids_limit_hits && e.kill_reason.empty()) {
        e.kill_reason = ProcessLimitReason(options_.sandbox.pids);
        out.status = ExecStatus::kKilled;
        s.kill_reason = e.kill_reason;  // its exit comes after this call has ended
        s.kernel->Kill();
      }
    }
  }
  if (out.status == ExecStatus::kKilled) {
    out.kill_reason = e.kill_reason.empty() ? std::string("killed") : e.kill_reason;
  }

  out.out = CaptureStream(s, e, 1);
  out.err = CaptureStream(s, e, 2);
  for (const StreamOutput* so : {&out.out, &out.err}) {
    if (!so->saved.empty()) out.saved_files.push_back(so->saved);
  }
  out.truncated = e.out[1]->truncated() || e.out[2]->truncated();
  CountSavedOutputFiles(s, out);
  if (!e.timeout_note.empty()) out.notes.push_back(e.timeout_note);
  if (!e.state_notice.empty()) out.notes.push_back(e.state_notice);
  out.duration_ms = DurationMs(e.start_tp);
  if (notebooks_) notebooks_->Record(out);

  if (!shutting_down_) {
    loop_->Post([this, name = s.name] {
      if (Session* next = Find(name)) Pump(*next);
    });
  }
  return Finished{std::move(e.cb.done), std::move(out)};
}

SessionsReport SessionManager::ListSessions() const {
  const int64_t now = EventLoop::NowMs();
  SessionsReport report;
  for (const auto& [name, s] : sessions_) {
    SessionInfo info;
    info.name = name;
    info.state = "idle";
    if (!s->kernel || !s->kernel->alive()) {
      info.state = "stopped";
    } else if (!s->kernel->ready()) {
      info.state = "starting";
    } else if (s->running) {
      info.state = "busy";
    }
    if (s->kernel && s->kernel->alive() && s->kernel->has_cgroup()) {
      if (auto u = s->kernel->Usage(); u.ok()) {
        info.memory_bytes = u->memory_current_bytes;
        info.peak_memory_bytes = std::max(u->memory_peak_bytes, u->memory_current_bytes);
        info.cpu_ms = static_cast<double>(u->cpu_usec) / 1000.0;
      }
    }
    info.age_seconds = static_cast<double>(now - s->created_ms) / 1000.0;
    info.idle_seconds = static_cast<double>(now - s->last_used_ms) / 1000.0;
    info.execution_count = s->execution_count;
    info.queued = s->queue.size();
    info.kernel_restarts = s->kernels_started > 0 ? s->kernels_started - 1 : 0;
    report.sessions.push_back(std::move(info));
  }
  report.max_sessions = options_.settings.max_sessions;
  report.warm_kernels = pool_.size();
  report.memory_limit_bytes = options_.sandbox.memory_bytes;
  return report;
}

bool SessionManager::Reset(const std::string& name) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) return false;
  Session& s = *it->second;
  std::optional<Finished> finished;
  if (s.running) {
    s.running->kill_reason = "the session was reset with reset_session";
    finished = Complete(s, nullptr);
  }
  auto queued = std::exchange(s.queue, {});
  pool_.Retire(std::move(s.kernel));
  saved_->Forget(name);
  sessions_.erase(it);
  if (notebooks_) notebooks_->StateLost(name, "the session was reset with reset_session", true);
  // The session is gone before anyone hears of it: a done() may call back in.
  if (finished) finished->Deliver();
  FailAll(std::move(queued),
          Status(Code::kCancelled, "the session '" + name + "' was reset before this call ran"));
  return true;
}

void SessionManager::SweepIdle() {
  sweep_timer_ = loop_->AddTimer(milliseconds(kSweepMs), [this] { SweepIdle(); });
  const int64_t now = EventLoop::NowMs();
  const int64_t idle_ms = static_cast<int64_t>(options_.settings.idle_timeout_s) * 1000;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& s = *it->second;
    if (!s.running && s.queue.empty() && now - s.last_used_ms > idle_ms) {
      spdlog::info("session {}: idle for {} s, stopping its kernel", s.name,
                   (now - s.last_used_ms) / 1000);
      pool_.Retire(std::move(s.kernel));
      if (notebooks_) notebooks_->StateLost(s.name, "the session was idle and stopped", true);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace mcpx::session
