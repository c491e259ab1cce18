// The package overlay: one virtual environment per state dir, layered over the system's Python
// (include-system-site-packages), so an install reuses what Debian provides and an upgrade
// replaces the overlay's own copy. Kernels run its interpreter (read-only mount); only the
// installer's jail mounts it writable (packages/installer.h).
//
// The venv is written here, not by `python3 -m venv`: it is four entries (pyvenv.cfg, bin/python3
// and bin/python pointing at the system interpreter, an empty site-packages), and writing them
// needs no Python run on the host.
#pragma once

#include <string>

#include "util/status.h"

namespace mcpx::session {

// The overlay's interpreter inside a sandbox (the overlay is mounted at jail::kPackagesPath).
inline constexpr const char* kOverlayPython = "/opt/mcpx/packages/bin/python3";

// "python3.11": the system interpreter's versioned name, from /usr/bin/python3's link.
Result<std::string> SystemPythonName();

// Creates the venv in `dir` when its pyvenv.cfg is missing (an existing one is left alone).
// On a root server every entry is handed to the host identity the installer's jail runs as
// (jail::PlanIdMap of `dir`), so that jail can write it and host root owns nothing there.
Status PrepareOverlay(const std::string& dir);

// <dir>/lib/python3.X/site-packages on the host.
Result<std::string> OverlaySitePackages(const std::string& dir);

}  // namespace mcpx::session
