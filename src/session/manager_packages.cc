// SessionManager's side of package installs: every install (the tool's, a cell's `%pip install`)
// goes to the installer through Install, after which every kernel looks for new packages and the
// sessions that imported an installed distribution are named; a cell's outcome goes back to its
// kernel.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "session/manager.h"
#include "session/manager_state.h"

namespace mcpx::session {

void SessionManager::OnInstallFrame(Session& s, const KernelFrame& msg) {
  const std::string name = s.name;
  const uint64_t serial = s.kernel->serial();
  const uint64_t exec_id = s.running->id;
  // The answer goes to the kernel that asked, if it still runs (a reset or a kill since then
  // leaves nobody waiting; a kernel interrupted meanwhile skips the late answer).
  auto reply = [this, name, serial](bool ok, const std::string& text) {
    Session* t = Find(name);
    if (t == nullptr || !t->kernel || t->kernel->serial() != serial || !t->kernel->alive()) {
      return;
    }
    if (Status st = t->kernel->Send({{"op", "install_result"}, {"ok", ok}, {"text", text}});
        !st.ok()) {
      spdlog::warn("session {}: cannot hand the install result to the kernel: {}", name,
                   st.ToString());
    }
  };
  if (installer_ == nullptr) {
    return reply(false, "this server has no package installer; %pip install is unavailable");
  }
  if (s.installing) {
    // One at a time per session: a kernel only asks again after its answer, so this is a
    // kernel that does not follow the protocol.
    return reply(false, "an install from this session is already running");
  }
  s.installing = true;
  // Waiting for the install is not the cell's time: pip has its own bound (install_timeout_s),
  // and a cell interrupted mid-install would leave the install running without its reader.
  Execution& e = *s.running;
  if (e.timeout_timer != 0) {
    loop_->CancelTimer(e.timeout_timer);
    e.timeout_timer = 0;
    e.timeout_left_ms = e.timeout_at_ms - EventLoop::NowMs();
  }
  spdlog::info("session {}: %pip install {}", name, msg.requirement);
  auto done = [this, reply, name, serial, exec_id](InstallOutcome out) {
    if (Session* t = Find(name); t != nullptr && t->kernel && t->kernel->serial() == serial) {
      t->installing = false;
      // The cell's own clock runs again (unless the cell ended meanwhile).
      if (Execution* r = Running(name, exec_id); r != nullptr && r->timeout_left_ms) {
        ArmTimeout(*r, name, std::max<int64_t>(*r->timeout_left_ms, 0));
        r->timeout_left_ms.reset();
      }
    }
    reply(out.ok(), out.Summary());
  };
  Install(InstallRequest{msg.requirement, msg.upgrade, name},
          InstallCallbacks{.done = std::move(done), .progress = nullptr});
}

uint64_t SessionManager::Install(InstallRequest request, InstallCallbacks cb) {
  if (installer_ == nullptr) {
    InstallOutcome out;
    out.requirement = request.requirement;
    out.error = "this server has no package installer";
    cb.done(std::move(out));
    return 0;
  }
  auto done = [this, done = std::move(cb.done)](InstallOutcome out) {
    AfterInstall(out);
    done(std::move(out));
  };
  return installer_->Install(std::move(request),
                             InstallCallbacks{.done = std::move(done), .progress = cb.progress});
}

void SessionManager::CancelInstall(uint64_t id) {
  if (installer_ != nullptr) installer_->Cancel(id);
}

void SessionManager::AfterInstall(InstallOutcome& outcome) {
  if (outcome.status != InstallStatus::kInstalled) return;
  ++packages_generation_;
  for (const auto& [name, s] : sessions_) {
    if (!s->kernel) continue;
    bool imported = false;
    for (const InstalledDist& d : outcome.installed) {
      for (const std::string& m : d.modules) imported = imported || s->imports.count(m) != 0;
    }
    if (imported) outcome.reset_needed.push_back(name);
  }
}

}  // namespace mcpx::session
