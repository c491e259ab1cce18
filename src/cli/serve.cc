// `mcp-executor serve`: MCP over stdio. fd 1 belongs to the transport alone from here on.
#include <memory>

#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "jail/cgroup.h"
#include "jail/policy.h"
#include "mcp/server.h"
#include "mcp/tool_registry.h"
#include "mcp/transport.h"
#include "packages/index_config.h"
#include "packages/installer.h"
#include "session/jailed_kernel.h"
#include "session/manager.h"
#include "session/runtime.h"
#include "session/server_policy.h"
#include "tools/file_tools.h"
#include "tools/package_tools.h"
#include "tools/session_tools.h"
#include "tools/workspace_resources.h"
#include "util/event_loop.h"
#include "workspace/workspace.h"

namespace mcpx::cli {

int RunServe(const Options& opts) {
  auto loop = EventLoop::Create();
  if (!loop.ok()) {
    spdlog::error("cannot create the event loop: {}", loop.status().ToString());
    return 1;
  }
  auto ws = workspace::Workspace::Open(opts.workspace);
  if (!ws.ok()) {
    spdlog::error("cannot open workspace {}: {}", opts.workspace, ws.status().ToString());
    return 1;
  }

  auto policy = session::LoadServerPolicy(opts.policy, opts.policies_dir());
  if (!policy.ok()) {
    spdlog::error("cannot load policy '{}': {}", opts.policy, policy.status().ToString());
    return 2;
  }
  // Detect before any kernel exists: on cgroup v2 this moves the server into a leaf cgroup.
  std::unique_ptr<jail::CgroupManager> cgroups = jail::CgroupManager::Detect();
  const auto& cg = cgroups->report();
  if (!cg.usable) {
    spdlog::warn(
        "cgroup limits unavailable ({}): memory is bounded by RLIMIT_AS, processes by "
        "RLIMIT_NPROC; {}",
        cg.detail, cg.fix);
  }

  // Declared before the transport and the server so that it outlives both: calls still in
  // flight at exit belong to tools in here.
  mcp::ToolRegistry registry;
  tools::AddFileTools(registry, *ws);

  auto kernel_config = session::MakeKernelConfig(
      *policy,
      session::RuntimePaths{opts.rootfs_dir(), opts.kernel_dir(), opts.state_dir, (*ws)->root()},
      cg.usable ? cgroups.get() : nullptr);
  if (!kernel_config.ok()) {
    spdlog::error("{}", kernel_config.status().ToString());
    return 2;
  }
  if (Status st = packages::ValidateIndexConfig(opts.index); !st.ok()) {
    spdlog::error("package sources: {}", st.message());
    return 2;
  }
  auto installer = std::make_shared<packages::Installer>(
      loop->get(), *kernel_config,
      packages::InstallerOptions{opts.index, opts.state_dir + "/pip-cache"});
  if (Status st = installer->Prepare(); !st.ok()) {
    spdlog::error("{}", st.ToString());
    return 2;
  }
  auto sessions = std::make_shared<session::SessionManager>(
      loop->get(),
      std::make_unique<session::JailedKernelFactory>(loop->get(), std::move(kernel_config).value()),
      *ws,
      session::ManagerOptions{.sandbox = (*policy)->limits(),
                              .settings = (*policy)->settings,
                              .warm_kernels = opts.warm_kernels});
  tools::AddSessionTools(registry, sessions);
  sessions->SetInstaller(installer.get());
  tools::AddPackageTools(registry, sessions, packages::DescribeSources(opts.index));

  mcp::StdioTransport transport(**loop, 0, 1);
  mcp::ServerOptions server_options;
  server_options.tools_page_size = opts.tools_page_size;
  mcp::Server server(transport, registry, server_options);
  server.SetResources(tools::MakeWorkspaceResources(*ws));
  server.SetTimers(std::make_unique<mcp::LoopTimers>(**loop));
  // Kernels and their cgroups go before exit, whatever ends the loop.
  server.OnShutdown([sessions, installer] {
    installer->Shutdown();
    sessions->Shutdown();
  });
  sessions->Start();

  spdlog::info("mcp-executor {} serving MCP on stdio; workspace {}, policy {}",
               mcp::ServerVersion(), opts.workspace, opts.policy);
  return server.Run(**loop, transport);
}

}  // namespace mcpx::cli
