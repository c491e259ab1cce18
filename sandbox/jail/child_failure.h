// What a failed step of the post-fork child reports: plain data, no allocation.
#pragma once

#include <cerrno>

namespace mcpx::jail {

struct ChildFailure {
  const char* step = nullptr;  // nullptr: success
  int err = 0;

  bool failed() const { return step != nullptr; }
};

inline ChildFailure ChildOk() { return {}; }
inline ChildFailure ChildFail(const char* step, int err = errno) { return {step, err}; }

}  // namespace mcpx::jail
