// The real kernel: sandbox/kernel/mcpx_kernel.py running in its own jail and cgroup.
//
// It talks over three fds that the event loop watches: a control socketpair (framed JSON, fd 3
// inside), and the stdout and stderr pipes (fd 1 and 2 inside), plus the sandbox's pidfd for its
// end. Nothing here blocks: writes are queued, reads happen when epoll says so.
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

#include "jail/jail.h"
#include "session/frame_codec.h"
#include "session/kernel.h"
#include "session/runtime.h"
#include "session/zygote.h"
#include "util/event_loop.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::session {

class JailedKernel : public Kernel {
 public:
  static constexpr size_t kReadChunk = 64u << 10;
  static constexpr size_t kDrainBudget = 2u << 20;
  static constexpr int kDeathReads = 512;
  // What a kernel wrote to stderr before it was ready is kept (the tail) for the error that
  // says why it did not start.
  static constexpr size_t kStartupStderrBytes = 512;
  // Spawned cold, or forked from `zygote` when one is given (it must be ready).
  static Result<std::unique_ptr<JailedKernel>> Start(EventLoop* loop, const KernelConfig& config,
                                                     uint64_t serial, Zygote* zygote = nullptr);
  ~JailedKernel() override;
  JailedKernel(const JailedKernel&) = delete;
  JailedKernel& operator=(const JailedKernel&) = delete;

  void set_callbacks(Callbacks cb) override { cb_ = std::move(cb); }
  bool ready() const override { return ready_; }
  bool alive() const override { return alive_; }
  const std::string& protocol_error() const override { return protocol_error_; }
  std::string StartFailure(const jail::ExitStatus& exit) const override;
  uint64_t serial() const override { return serial_; }

  Status Send(const nlohmann::json& message) override;
  // SIGINT to the sandbox's init, which forwards it to Python (KeyboardInterrupt).
  Status Interrupt() override;
  // Ends the sandbox now; on_exit follows from the event loop.
  void Kill() override;
  // Reads stdout/stderr until they are empty, up to kDrainBudget each.
  void DrainOutput() override;
  Result<jail::CgroupUsage> Usage() const override;
  bool has_cgroup() const override { return sandbox_.cgroup != nullptr; }

 private:
  JailedKernel(EventLoop* loop, uint64_t serial, FrameLimits limits)
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
  uint32_t start_timeout_s_ = 0;
};

// Starts JailedKernels from one KernelConfig; Prepare() builds the matplotlib font cache once,
// then starts the policy's zygote and is done when it is ready (or failed), so that the warm
// pool's first kernels are forked too. Kernels are forked from the zygote while it is ready, and
// start cold otherwise (before it is ready, and when it failed: it is then started again in the
// background, at most kZygoteRetries times in a row).
class JailedKernelFactory : public KernelFactory {
 public:
  JailedKernelFactory(EventLoop* loop, KernelConfig config)
      : loop_(loop), config_(std::move(config)) {}
  ~JailedKernelFactory() override { Shutdown(); }

  void Prepare(std::function<void()> done) override;
  void Shutdown() override;
  Result<std::unique_ptr<Kernel>> Start(uint64_t serial) override;

  const KernelConfig& config() const { return config_; }
  static constexpr int kZygoteRetries = 3;

 private:
  void WaitForCachePrep(pid_t pid, std::function<void()> done);
  void StartZygote();
  // Runs (and clears) what waits for the zygote's first outcome: ready or failed.
  void ZygoteSettled();
  void OnZygoteExit(const std::string& why);

  EventLoop* loop_;
  KernelConfig config_;
  pid_t cache_prep_pid_ = -1;
  EventLoop::TimerId cache_prep_timer_ = 0;
  std::unique_ptr<Zygote> zygote_;
  // Zygotes that ended, kept until the last session forked from them has ended.
  std::vector<std::unique_ptr<Zygote>> retired_;
  uint64_t zygote_serial_ = 0;
  int zygote_failures_ = 0;  // zygotes ended since one was last ready
  EventLoop::TimerId zygote_timer_ = 0;
  std::function<void()> after_zygote_;  // Prepare's `done`, until the first zygote settles
  bool shut_down_ = false;
};

}  // namespace mcpx::session
