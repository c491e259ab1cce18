// One Python kernel: sandbox/kernel/mcpx_kernel.py running in its own jail and cgroup.
//
// The kernel talks over three fds that the event loop watches: a control socketpair (framed
// JSON, fd 3 inside), and the stdout and stderr pipes (fd 1 and 2 inside), plus the sandbox's
// pidfd for its end. Nothing here blocks: writes are queued, reads happen when epoll says so.
// Ordering: the kernel flushes a cell's output into the pipes before it writes the reply, so
// draining the pipes when a reply arrives puts every byte of the cell before its result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "jail/cgroup.h"
#include "jail/jail.h"
#include "jail/policy.h"
#include "jail/seccomp_compiler.h"
#include "session/frame_codec.h"
#include "session/kernel_frame.h"
#include "util/event_loop.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::session {

// Where the kernel's pieces are on the host; shared by every kernel of a server.
struct KernelConfig {
  jail::PolicyPtr policy;
  std::string rootfs_dir;     // rootfs/ (manifest, etc/)
  std::string workspace;      // host workspace, /workspace inside
  std::string packages_dir;   // package overlay, read-only at /opt/mcpx/packages
  std::string kernel_dir;     // sandbox/kernel, read-only at /opt/mcpx/kernel
  std::string mpl_cache_dir;  // prepared matplotlib cache, read-only at /opt/mcpx/mpl-cache
  jail::CgroupManager* cgroups = nullptr;
};

inline constexpr const char* kMplCacheInside = "/opt/mcpx/mpl-cache";

class Kernel {
 public:
  static constexpr size_t kReadChunk = 64u << 10;
  static constexpr size_t kDrainBudget = 2u << 20;
  static constexpr int kDeathReads = 512;
  // What a kernel wrote to stderr before it was ready is kept (the tail) for the error that
  // says why it did not start.
  static constexpr size_t kStartupStderrBytes = 512;
  struct Callbacks {
    std::function<void(const KernelFrame&)> on_message;  // every frame, `ready` included
    std::function<void(int stream, std::string_view data)> on_output;  // stream 1 or 2
    std::function<void(jail::ExitStatus)> on_exit;  // the sandbox ended; after this, nothing
  };

  static Result<std::unique_ptr<Kernel>> Start(EventLoop* loop, const KernelConfig& config,
                                               uint64_t serial);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // Replacing callbacks is how a warm kernel moves from the pool to a session.
  void set_callbacks(Callbacks cb) { cb_ = std::move(cb); }

  bool ready() const { return ready_; }
  bool alive() const { return alive_; }
  // Why the kernel was stopped for a broken control frame; empty otherwise.
  const std::string& protocol_error() const { return protocol_error_; }
  // Why a kernel that never became ready ended: the start deadline, or its exit status and the
  // last of what it wrote to stderr. Empty while it runs, and for a kernel that was ready.
  std::string StartFailure(const jail::ExitStatus& exit) const;
  uint64_t serial() const { return serial_; }
  pid_t pid() const { return sandbox_.pid; }
  int64_t started_ms() const { return started_ms_; }

  Status Send(const nlohmann::json& message);
  // SIGINT to the sandbox's init, which forwards it to Python (KeyboardInterrupt).
  Status Interrupt();
  // Ends the sandbox now; on_exit follows from the event loop.
  void Kill();
  // Reads stdout/stderr until they are empty (called when a reply arrives).
  void DrainOutput();
  // cgroup accounting; kFailedPrecondition without a cgroup.
  Result<jail::CgroupUsage> Usage() const;
  bool has_cgroup() const { return sandbox_.cgroup != nullptr; }

 private:
  Kernel(EventLoop* loop, uint64_t serial, FrameLimits limits)
      : loop_(loop), serial_(serial), limits_(limits), decoder_(limits.max_frame_bytes) {}

  void OnControl(uint32_t events);
  // Up to max_reads reads of kReadChunk, each decoded before the next.
  void ReadControl(int max_reads);
  // Hands every complete frame to the callbacks; false once the kernel was stopped.
  bool DecodeFrames();
  void OnPipe(int stream, uint32_t events);
  void OnPidfd();
  void FlushWrites();
  void ReadPipe(int stream, size_t budget);
  void Close();
  // A frame broke the protocol: the kernel is killed and `what` becomes the kill reason.
  void ProtocolViolation(const std::string& what);
  // The policy's start_timeout_s passed before `ready`.
  void OnStartTimeout();
  void KeepStartupStderr(std::string_view data);

  EventLoop* loop_;
  uint64_t serial_;
  FrameLimits limits_;
  FrameDecoder decoder_;
  jail::Sandbox sandbox_;
  UniqueFd control_;
  UniqueFd out_[3];  // [1] stdout, [2] stderr
  std::string pending_write_;
  Callbacks cb_;
  std::string protocol_error_;
  std::string start_error_;
  std::string startup_stderr_;
  EventLoop::TimerId start_timer_ = 0;
  bool ready_ = false;
  bool alive_ = true;
  bool exit_reported_ = false;
  int64_t started_ms_ = 0;
  uint32_t start_timeout_s_ = 0;
};

}  // namespace mcpx::session
