// The server's single event loop: epoll over fds, one-shot timers, and posted tasks.
//
// Everything the server waits on (stdin, each kernel's sockets and pipes, pidfds, timers) is
// registered here, so no thread ever blocks on a kernel. Not thread-safe: use from the loop's
// thread only. Callbacks may add or remove any registration, including their own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx {

class EventLoop {
 public:
  using FdCallback = std::function<void(uint32_t events)>;
  using TimerId = uint64_t;

  static Result<std::unique_ptr<EventLoop>> Create();

  // Watches fd for `events` (EPOLLIN, EPOLLOUT, ...; EPOLLHUP/ERR are always reported).
  // The loop does not own fd; Remove() it before closing it.
  Status Add(int fd, uint32_t events, FdCallback cb);
  Status Modify(int fd, uint32_t events);
  void Remove(int fd);
  bool Watching(int fd) const { return fds_.count(fd) != 0; }

  // One-shot timer; ids are never reused, cancelling a fired or unknown id is a no-op.
  TimerId AddTimer(std::chrono::milliseconds delay, std::function<void()> cb);
  void CancelTimer(TimerId id);

  // Runs cb on the next iteration, before waiting.
  void Post(std::function<void()> cb);

  // Runs until Stop(); returns after the iteration in which Stop() was called.
  void Run();
  // One iteration: waits at most `max_wait` (negative: until something happens).
  void RunOnce(std::chrono::milliseconds max_wait);
  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

  // Monotonic milliseconds.
  static int64_t NowMs();

 private:
  explicit EventLoop(UniqueFd epfd) : epfd_(std::move(epfd)) {}

  struct Timer {
    TimerId id;
    std::function<void()> cb;
  };

  UniqueFd epfd_;
  std::unordered_map<int, std::shared_ptr<FdCallback>> fds_;
  std::multimap<int64_t, Timer> timers_;  // deadline (ms) -> timer
  std::unordered_map<TimerId, int64_t> timer_deadlines_;
  std::deque<std::function<void()>> posted_;
  TimerId next_timer_id_ = 1;
  bool stopped_ = false;
};

}  // namespace mcpx
