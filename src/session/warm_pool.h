// Kernels started before anyone asks for them, so a new session does not wait for Python to
// import its preload modules; and the one place kernels are retired.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "session/kernel.h"
#include "util/event_loop.h"
#include "util/status.h"

namespace mcpx::session {

class WarmPool {
 public:
  // `factory` must outlive the pool. size 0: no warm kernels, every session starts its own.
  WarmPool(EventLoop* loop, KernelFactory* factory, size_t size)
      : loop_(loop), factory_(factory), size_(size) {}
  ~WarmPool() { Shutdown(); }

  // Lets the factory prepare (matplotlib's font cache), then fills the pool.
  void Start();
  // Kills every kernel, warm or retired; nothing starts after this.
  void Shutdown();

  // A kernel for a session: a warm one (preferring those that finished their preloads), or a
  // new one when none is warm. A refill follows from the event loop.
  Result<std::unique_ptr<Kernel>> Take();
  // Kills `kernel` (null is fine) and destroys it from the event loop, outside the callback
  // that retired it (which may be running inside that kernel).
  void Retire(std::unique_ptr<Kernel> kernel);

  size_t size() const { return pool_.size(); }

 private:
  Result<std::unique_ptr<Kernel>> NewKernel() { return factory_->Start(next_serial_++); }
  void Refill();

  EventLoop* loop_;
  KernelFactory* factory_;
  size_t size_;
  std::deque<std::unique_ptr<Kernel>> pool_;
  std::vector<std::unique_ptr<Kernel>> graveyard_;
  uint64_t next_serial_ = 1;
  bool prepared_ = false;
  bool refill_posted_ = false;
  bool shut_down_ = false;
};

}  // namespace mcpx::session
