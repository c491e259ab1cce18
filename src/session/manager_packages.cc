// SessionManager's side of package installs: a cell's `%pip install` frame goes to the
// installer and its outcome back to that kernel; after any install, every kernel looks for new
// packages and the sessions that imported an installed distribution are named.
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
    AfterInstall(out);
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
  installer_->Install(InstallRequest{msg.requirement, msg.upgrade, name},
                      InstallCallbacks{.done = std::move(done), .progress = nullptr});
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
