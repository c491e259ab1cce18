#include "session/package_port.h"

#include "util/text.h"

namespace mcpx::session {
const char* InstallStatusName(InstallStatus s) {
  switch (s) {
    case InstallStatus::kInstalled:
      return "installed";
    case InstallStatus::kAlreadySatisfied:
      return "already_satisfied";
    case InstallStatus::kRefused:
      return "refused";
    case InstallStatus::kError:
      return "error";
    case InstallStatus::kTimeout:
      return "timeout";
    case InstallStatus::kCancelled:
      return "cancelled";
  }
  return "error";
}

std::string InstallOutcome::Summary() const {
  if (!ok()) return error;
  std::string text;
  if (status == InstallStatus::kAlreadySatisfied) {
    text = "Already installed: " + (satisfied.empty() ? requirement : Join(satisfied, ", ")) +
           " (nothing to do).";
  } else {
    std::vector<std::string> items;
    for (const InstalledDist& d : installed) {
      items.push_back(d.name + " " + d.version +
                      (d.replaced.empty() ? "" : " (replaced " + d.replaced + ")"));
    }
    text = "Installed " + Join(items, ", ") + ". Importable now in every session.";
  }
  if (!reset_needed.empty()) {
    std::vector<std::string> modules;
    for (const InstalledDist& d : installed) {
      modules.insert(modules.end(), d.modules.begin(), d.modules.end());
    }
    text += " Session" + std::string(reset_needed.size() > 1 ? "s " : " ") +
            Join(reset_needed, ", ") + " had already imported " + Join(modules, ", ") +
            " and keep the old code until reset_session.";
  }
  return text;
}

}  // namespace mcpx::session
