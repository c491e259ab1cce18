#include "session/warm_pool.h"

#include <algorithm>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace mcpx::session {

void WarmPool::Start() {
  factory_->Prepare([this] {
    prepared_ = true;
    Refill();
  });
}

void WarmPool::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  factory_->Shutdown();
  pool_.clear();
  graveyard_.clear();
}

void WarmPool::Refill() {
  refill_posted_ = false;
  while (!shut_down_ && prepared_ && pool_.size() < size_) {
    auto k = NewKernel();
    if (!k.ok()) {
      spdlog::error("cannot start a warm kernel: {}", k.status().ToString());
      return;  // the next session start tries again and reports the error to the caller
    }
    const uint64_t serial = (*k)->serial();
    (*k)->set_callbacks(Kernel::Callbacks{
        nullptr,
        [serial](int, std::string_view data) {
          spdlog::debug("warm kernel {} wrote {} bytes before use", serial, data.size());
        },
        [this, serial](jail::ExitStatus exit) {
          for (auto it = pool_.begin(); it != pool_.end(); ++it) {
            if ((*it)->serial() == serial) {
              const std::string why = (*it)->StartFailure(exit);
              spdlog::warn("warm kernel {} ended before use: {}", serial,
                           why.empty() ? "exit " + std::to_string(exit.ShellCode()) : why);
              Retire(std::move(*it));
              pool_.erase(it);
              break;
            }
          }
        }});
    pool_.push_back(std::move(k).value());
  }
}

Result<std::unique_ptr<Kernel>> WarmPool::Take() {
  if (shut_down_) return Status(Code::kUnavailable, "the server is shutting down");
  if (pool_.empty()) return NewKernel();
  auto it = std::find_if(pool_.begin(), pool_.end(), [](const auto& k) { return k->ready(); });
  if (it == pool_.end()) it = pool_.begin();
  std::unique_ptr<Kernel> k = std::move(*it);
  pool_.erase(it);
  if (!refill_posted_) {
    refill_posted_ = true;
    loop_->Post([this] { Refill(); });
  }
  return k;
}

void WarmPool::Retire(std::unique_ptr<Kernel> kernel) {
  if (!kernel) return;
  kernel->set_callbacks({});
  kernel->Kill();
  graveyard_.push_back(std::move(kernel));
  loop_->Post([this] { graveyard_.clear(); });
}

}  // namespace mcpx::session
