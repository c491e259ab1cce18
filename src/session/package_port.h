// The session layer's seam to the package installer (packages/installer.h implements it): what
// an install is asked for and what it ends with, typed, without MCP.
//
// Two callers: the install_package tool, and a kernel whose cell runs `%pip install NAME` (it
// sends an `install` frame; the manager asks the installer and answers the kernel). Both go
// through SessionManager::Install, which after an install tells every kernel to look for new
// packages before its next cell and names the sessions that had already imported an installed
// distribution.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/status.h"

namespace mcpx::session {

struct InstallRequest {
  std::string requirement;  // one PEP 508 requirement, checked by the installer
  bool upgrade = false;     // `%pip install -U`
  std::string session;      // the session whose cell asked (empty: the tool)
};

enum class InstallStatus { kInstalled, kAlreadySatisfied, kRefused, kError, kTimeout, kCancelled };
const char* InstallStatusName(InstallStatus s);

struct InstalledDist {
  std::string name;
  std::string version;
  std::string replaced;              // the version it replaced in the overlay; empty: none
  std::vector<std::string> modules;  // its top-level import names
};

struct InstallOutcome {
  InstallStatus status = InstallStatus::kError;
  std::string requirement;
  std::vector<InstalledDist> installed;   // what pip installed (the dependencies too)
  std::vector<std::string> satisfied;     // "numpy 1.24.2": already there (system or overlay)
  std::vector<std::string> reset_needed;  // sessions that imported an installed dist's module
  std::string error;                      // short, for a model; empty on success
  int64_t duration_ms = 0;

  bool ok() const {
    return status == InstallStatus::kInstalled || status == InstallStatus::kAlreadySatisfied;
  }
  // One paragraph for a model: what was installed (or why not), and who must reset.
  std::string Summary() const;
};

struct InstallCallbacks {
  std::function<void(InstallOutcome)> done;               // exactly once, from the event loop
  std::function<void(const std::string& line)> progress;  // optional: waiting, pip's steps
};

class PackageInstaller {
 public:
  virtual ~PackageInstaller() = default;
  // Queues the install (one runs at a time); returns an id for Cancel.
  virtual uint64_t Install(InstallRequest request, InstallCallbacks cb) = 0;
  // A queued install ends kCancelled; a running one is killed. pip writes a distribution's
  // metadata after its files, so one cut short looks absent and the next install redoes it.
  virtual void Cancel(uint64_t id) = 0;
};

}  // namespace mcpx::session
