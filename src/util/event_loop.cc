#include "util/event_loop.h"

#include <sys/epoll.h>
#include <time.h>

#include <array>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

namespace mcpx {

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd epfd(epoll_create1(EPOLL_CLOEXEC));
  if (!epfd) return ErrnoStatus(Code::kInternal, "epoll_create1");
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(epfd)));
}

Status EventLoop::Add(int fd, uint32_t events, FdCallback cb) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoStatus(Code::kInternal, "epoll_ctl(ADD, fd " + std::to_string(fd) + ")");
  }
  fds_[fd] = std::make_shared<FdCallback>(std::move(cb));
  return Status::Ok();
}

Status EventLoop::Modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return ErrnoStatus(Code::kInternal, "epoll_ctl(MOD, fd " + std::to_string(fd) + ")");
  }
  return Status::Ok();
}

void EventLoop::Remove(int fd) {
  if (fds_.erase(fd) == 0) return;
  epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::AddTimer(std::chrono::milliseconds delay, std::function<void()> cb) {
  const TimerId id = next_timer_id_++;
  const int64_t deadline = NowMs() + delay.count();
  timers_.emplace(deadline, Timer{id, std::move(cb)});
  timer_deadlines_[id] = deadline;
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  auto range = timers_.equal_range(it->second);
  for (auto t = range.first; t != range.second; ++t) {
    if (t->second.id == id) {
      timers_.erase(t);
      break;
    }
  }
  timer_deadlines_.erase(it);
}

void EventLoop::Post(std::function<void()> cb) { posted_.push_back(std::move(cb)); }

int64_t EventLoop::NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {

// A callback that throws must not end the loop: it serves every session and the client, and
// the exception came from one of them (a bad frame, a bad message). The callback's own owner
// stays responsible for its state; the loop logs and goes on.
template <typename F>
void Guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("uncaught exception in a {} callback: {}; the server goes on", what, e.what());
  } catch (...) {
    spdlog::error("uncaught exception in a {} callback; the server goes on", what);
  }
}

}  // namespace

void EventLoop::Run() {
  stopped_ = false;
  while (!stopped_) RunOnce(std::chrono::milliseconds(-1));
}

void EventLoop::RunOnce(std::chrono::milliseconds max_wait) {
  while (!posted_.empty()) {
    auto cb = std::move(posted_.front());
    posted_.pop_front();
    Guarded("posted", cb);
    if (stopped_) return;
  }

  int timeout = static_cast<int>(max_wait.count());
  if (!timers_.empty()) {
    const int64_t until = timers_.begin()->first - NowMs();
    const int t = until < 0 ? 0 : static_cast<int>(until);
    timeout = timeout < 0 ? t : std::min(timeout, t);
  }
  if (!posted_.empty()) timeout = 0;

  std::array<epoll_event, 64> events{};
  const int n = epoll_wait(epfd_.get(), events.data(), static_cast<int>(events.size()), timeout);
  for (int i = 0; i < n && !stopped_; ++i) {
    auto it = fds_.find(events[static_cast<size_t>(i)].data.fd);
    if (it == fds_.end()) continue;  // removed by an earlier callback in this batch
    auto cb = it->second;            // keep alive while it runs, even if it removes itself
    const uint32_t ev = events[static_cast<size_t>(i)].events;
    Guarded("fd", [&] { (*cb)(ev); });
  }

  const int64_t now = NowMs();
  while (!stopped_ && !timers_.empty() && timers_.begin()->first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_deadlines_.erase(node.mapped().id);
    Guarded("timer", node.mapped().cb);
  }
}

}  // namespace mcpx
