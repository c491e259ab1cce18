#include "session/runtime.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include <spdlog/spdlog.h>

#include "jail/mounts.h"
#include "session/overlay.h"
#include "util/text.h"

extern char** environ;

namespace mcpx::session {
namespace {

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status(Code::kFailedPrecondition,
                  "cannot create " + dir + ": " + ec.message() + " (choose another --state-dir)",
                  ec.value());
  }
  return Status::Ok();
}

// The zygote's extension module, built next to the server's binary (sandbox/zygote); "" when
// there is none.
std::string FindZygoteModule() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const auto module = exe.parent_path() / "_mcpx_fork.so";
  return std::filesystem::is_regular_file(module, ec) ? module.string() : "";
}

}  // namespace

Result<KernelConfig> MakeKernelConfig(ServerPolicyPtr policy, const RuntimePaths& paths,
                                      jail::CgroupManager* cgroups) {
  KernelConfig c;
  c.policy = std::move(policy);
  c.rootfs_dir = paths.rootfs_dir;
  c.kernel_dir = paths.kernel_dir;
  c.workspace = paths.workspace;
  c.packages_dir = paths.state_dir + "/packages";
  c.mpl_cache_dir = paths.state_dir + "/mpl-cache";
  c.cgroups = cgroups;
  c.zygote_module = FindZygoteModule();
  RETURN_IF_ERROR(MakeDirs(paths.state_dir));
  if (Status st = PrepareOverlay(c.packages_dir); !st.ok()) {
    return st.Annotate("cannot prepare the package overlay (choose another --state-dir)");
  }
  RETURN_IF_ERROR(MakeDirs(c.mpl_cache_dir));
  return c;
}

jail::SpawnRequest PythonSpawnRequest(const KernelConfig& config, std::vector<std::string> argv) {
  // BLAS and OpenMP pools sized to the CPU quota: more threads than cores only thrash, and
  // each thread counts against the pids limit.
  const int threads = std::max(1, static_cast<int>(std::ceil(config.policy->limits().cpus)));
  jail::SpawnRequest req;
  req.policy = config.policy->sandbox;
  req.rootfs_dir = config.rootfs_dir;
  req.workspace = config.workspace;
  req.packages = config.packages_dir;
  req.kernel_dir = config.kernel_dir;
  if (!config.mpl_cache_dir.empty()) {
    req.extra_binds.push_back(jail::BindMount{.source = config.mpl_cache_dir,
                                              .target = kMplCacheInside,
                                              .writable = false,
                                              .optional = true,
                                              .reason = ""});
  }
  req.argv = std::move(argv);
  req.env = {
      // pip and pip3 first: in a kernel they explain install_package instead of PEP 668. Then
      // the overlay's bin: `python`/`python3` in a subprocess is the kernel's interpreter, which
      // sees the installed packages.
      "PATH=/opt/mcpx/kernel/bin:/opt/mcpx/packages/bin:/usr/local/bin:/usr/bin:/bin",
      "HOME=/tmp",  // dotfiles of libraries stay out of the workspace
      "LANG=C.UTF-8",
      "TMPDIR=/tmp",
      // `python3 -m pip` finds the same explanation (the overlay comes in as the venv).
      "PYTHONPATH=/opt/mcpx/kernel/pipshim",
      "PYTHONDONTWRITEBYTECODE=1",
      "OPENBLAS_NUM_THREADS=" + std::to_string(threads),
      "OMP_NUM_THREADS=" + std::to_string(threads),
      "MKL_NUM_THREADS=" + std::to_string(threads),
  };
  if (config.cgroups == nullptr) {
    // Memory is then bounded by RLIMIT_AS, which counts reservations: glibc reserves 64 MiB of
    // address space per malloc arena (one per thread, up to 8 per core), and with the preloads
    // a 1 GiB cap then fits about 23 threads. Two arenas let about 100 start.
    req.env.push_back("MALLOC_ARENA_MAX=2");
  }
  req.cwd = "/workspace";
  req.cgroups = config.cgroups;
  return req;
}

jail::SpawnRequest KernelSpawnRequest(const KernelConfig& config, const std::string& script,
                                      const std::string& fd_variable) {
  jail::SpawnRequest req =
      PythonSpawnRequest(config, {kOverlayPython, "-s", "/opt/mcpx/kernel/" + script});
  req.env.push_back(fd_variable + "=3");
  req.env.push_back("MCPX_PRELOAD=" + Join(config.policy->settings.preload, ","));
  req.env.push_back(std::string("MCPX_MPL_CACHE=") + kMplCacheInside);
  return req;
}

bool MplCacheReady(const KernelConfig& config) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(config.mpl_cache_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("fontlist-", 0) == 0 && e.path().extension() == ".json") return true;
  }
  return false;
}

Result<pid_t> StartMplCachePrep(const KernelConfig& config) {
  if (MplCacheReady(config)) return static_cast<pid_t>(-1);
  const std::string script = config.kernel_dir + "/prepare_mpl_cache.py";
  std::vector<std::string> args = {"/usr/bin/python3", "-s", "-E", script, config.mpl_cache_dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // A clean environment: no user fonts from HOME, no PYTHONPATH surprises.
  std::string home = "HOME=" + config.mpl_cache_dir;
  std::string path = "PATH=/usr/bin:/bin";
  std::string lang = "LANG=C.UTF-8";
  std::vector<char*> envp = {path.data(), home.data(), lang.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // stdout is the protocol: the script's listing of what it wrote is dropped; only its
  // errors (stderr) reach our log.
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // matplotlib reads ./matplotlibrc first: run in the cache folder (ours, read-only to
  // kernels), never in the server's cwd, which may be the workspace that sandboxed code writes.
  posix_spawn_file_actions_addchdir_np(&fa, config.mpl_cache_dir.c_str());
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Status(Code::kFailedPrecondition, "cannot run " + script, rc);
  spdlog::info("preparing the matplotlib font cache in {} (first start only)",
               config.mpl_cache_dir);
  return pid;
}

}  // namespace mcpx::session
