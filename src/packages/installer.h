// The package installer: pip, one requirement at a time, in a jail of its own (docs/SECURITY.md
// "The installer").
//
// That jail is a kernel's (user, mount, PID, IPC, UTS and net namespaces, seccomp, no
// capabilities, Landlock, cgroup limits) with three differences: the overlay is mounted
// writable, there is no workspace, and its only way out of its loopback-only network is a proxy
// port whose socket the jail hands to the server (jail::SpawnRequest::listen_port), served by
// PackageProxy with the operator's allow-list. With only --find-links wheelhouses (or
// --no-index) there is no proxy at all. pip gets binary wheels only unless the policy's
// allow_sdist says otherwise, and the policy's install_timeout_s bounds each run.
//
// The requirement is checked before anything runs (requirement.h); pip gets an argv, never a
// shell. Installs queue: a second waits (told so through its progress callback) and runs next.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "packages/index_config.h"
#include "session/package_port.h"
#include "session/runtime.h"
#include "util/event_loop.h"

namespace mcpx::packages {

// The port the proxy listens on inside the installer's namespace (its own loopback).
inline constexpr uint16_t kProxyPort = 3128;

struct InstallerOptions {
  IndexConfig index;
  std::string cache_dir;  // pip's download cache on the host (<state>/pip-cache)
};

class Installer : public session::PackageInstaller {
 public:
  // `config`: the kernels' (policy, rootfs, overlay, kernel folder, cgroups).
  Installer(EventLoop* loop, session::KernelConfig config, InstallerOptions options);
  ~Installer() override;

  // Creates the pip cache folder for the installer's identity. Call once before Install.
  Status Prepare();
  uint64_t Install(session::InstallRequest request, session::InstallCallbacks cb) override;
  void Cancel(uint64_t id) override;
  // Kills a running install and fails the queued ones.
  void Shutdown();

 private:
  struct Pending;
  struct Running;
  void StartNext();
  void ReadOutput(Running& r);
  void ReadReport(Running& r);
  void OnExit();
  void Finish(session::InstallOutcome outcome);
  session::InstallOutcome OutcomeOf(const Running& run, int shell_code) const;

  EventLoop* loop_;
  session::KernelConfig config_;
  InstallerOptions options_;
  std::deque<std::unique_ptr<Pending>> queue_;
  std::unique_ptr<Running> running_;
  uint64_t next_id_ = 1;
  bool shutting_down_ = false;
};

}  // namespace mcpx::packages
