// One-shot timers for the MCP layer: the event loop's in production, a hand-cranked fake in
// tests. Callbacks check for themselves whether what they refer to still exists.
#pragma once

#include <chrono>
#include <functional>

#include "util/event_loop.h"

namespace mcpx::mcp {

class Timers {
 public:
  virtual ~Timers() = default;
  virtual void After(std::chrono::milliseconds delay, std::function<void()> cb) = 0;
};

class LoopTimers : public Timers {
 public:
  explicit LoopTimers(EventLoop& loop) : loop_(loop) {}
  void After(std::chrono::milliseconds delay, std::function<void()> cb) override {
    loop_.AddTimer(delay, std::move(cb));
  }

 private:
  EventLoop& loop_;
};

}  // namespace mcpx::mcp
