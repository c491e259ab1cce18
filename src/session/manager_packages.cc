// SessionManager's side of package installs: a cell's `%pip install` frame goes to the
// installer and its outcome back to that kernel; after any install, every kernel looks for new
// packages and the sessions that imported an installed distribution are named.
#include <spdlog/spdlog.h>

#include "session/manager.h"
#include "session/manager_state.h"

namespace mcpx::session {

void SessionManager::OnInstallFrame(Session& s, const KernelFrame& msg) {
  const std::string name = s.name;
  const uint64_t serial = s.kernel->serial();
  // The answer goes to the kernel that asked, if it still runs (a reset or a kill since then
  // leaves nobody waiting; a kernel interrupted meanwhile skips the late answer).
  auto answer = [this, name, serial](bool ok, const std::string& text) {
    Session* t = Find(name);
    if (t == nullptr || !t->kernel || t->kernel->serial() != serial) return;
    t->installing = false;
    if (!t->kernel->alive()) return;
    if (Status st = t->kernel->Send({{"op", "install_result"}, {"ok", ok}, {"text", text}});
        !st.ok()) {
      spdlog::warn("session {}: cannot hand the install result to the kernel: {}", name,
                   st.ToString());
    }
  };
  if (installer_ == nullptr) {
    return answer(false, "this server has no package installer; %pip install is unavailable");
  }
  if (s.installing) {
    // One at a time per session: a kernel only asks again after its answer, so this is a
    // kernel that does not follow the protocol.
    return answer(false, "an install from this session is already running");
  }
  s.installing = true;
  spdlog::info("session {}: %pip install {}", name, msg.requirement);
  installer_->Install(InstallRequest{msg.requirement, msg.upgrade, name},
                      InstallCallbacks{.done =
                                           [this, answer](InstallOutcome out) {
                                             AfterInstall(out);
                                             answer(out.ok(), out.Summary());
                                           },
                                       .progress = nullptr});
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
