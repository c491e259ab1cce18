// What the session layer needs from a Python kernel, and the seam that makes one.
//
// The real kernel is JailedKernel (jailed_kernel.h): sandbox/kernel/mcpx_kernel.py in its own
// jail and cgroup. SessionManager and WarmPool see only this interface, so their unit tests run
// on a fake kernel, and another way of making kernels (a zygote) plugs in as a KernelFactory.
//
// A kernel talks in checked KernelFrames (kernel_frame.h): nothing of the sandbox's raw bytes
// crosses this interface except its stdout/stderr text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "jail/cgroup.h"
#include "jail/jail.h"
#include "session/kernel_frame.h"
#include "util/status.h"

namespace mcpx::session {

class Kernel {
 public:
  struct Callbacks {
    std::function<void(const KernelFrame&)> on_message;  // every frame, `ready` included
    std::function<void(int stream, std::string_view data)> on_output;  // stream 1 or 2
    std::function<void(jail::ExitStatus)> on_exit;  // the sandbox ended; after this, nothing
  };

  virtual ~Kernel() = default;

  // Replacing callbacks is how a warm kernel moves from the pool to a session.
  virtual void set_callbacks(Callbacks cb) = 0;

  virtual bool ready() const = 0;  // it sent `ready` (its preloads are imported)
  virtual bool alive() const = 0;
  // Why the kernel was stopped for a broken control frame; empty otherwise.
  virtual const std::string& protocol_error() const = 0;
  // Why a kernel that never became ready ended: the start deadline, or its exit status and the
  // last of what it wrote to stderr. Empty while it runs, and for a kernel that was ready.
  virtual std::string StartFailure(const jail::ExitStatus& exit) const = 0;
  virtual uint64_t serial() const = 0;

  virtual Status Send(const nlohmann::json& message) = 0;
  // KeyboardInterrupt in Python; the kernel keeps its state.
  virtual Status Interrupt() = 0;
  // Ends the kernel now; on_exit follows from the event loop.
  virtual void Kill() = 0;
  // Delivers what is left in stdout/stderr (called when a reply arrives, so every byte of a
  // cell comes before its result).
  virtual void DrainOutput() = 0;
  // cgroup accounting; kFailedPrecondition without a cgroup.
  virtual Result<jail::CgroupUsage> Usage() const = 0;
  virtual bool has_cgroup() const = 0;
};

class KernelFactory {
 public:
  virtual ~KernelFactory() = default;
  // One-time preparation before the first kernel (the matplotlib font cache); `done` runs from
  // the event loop when kernels may start, whether or not the preparation worked.
  virtual void Prepare(std::function<void()> done) { done(); }
  // Stops what Prepare started.
  virtual void Shutdown() {}
  // Starts a kernel in the background: it is ready() when its `ready` frame arrives.
  virtual Result<std::unique_ptr<Kernel>> Start(uint64_t serial) = 0;
};

}  // namespace mcpx::session
