// Bounded capture of one output stream (stdout or stderr) of one execution.
//
// A cell may print without end; the server's memory must not grow with it. The buffer keeps the
// first and last `cap/2` bytes; once the total passes `cap`, everything (head included) is also
// streamed to a spill sink (a file in the workspace) up to `spill_cap` bytes, so the full text can
// be named in the reply. Cuts never split a UTF-8 sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/status.h"
#include "util/utf8.h"

namespace mcpx::session {

class OutputBuffer {
 public:
  // Opens the spill destination on first need; returns a writer or an error. Called at most once.
  using SpillOpener = std::function<Result<std::function<Status(std::string_view)>>()>;

  OutputBuffer(uint64_t cap, uint64_t spill_cap, SpillOpener opener)
      : cap_(cap), spill_cap_(spill_cap), opener_(std::move(opener)) {}

  void Append(std::string_view data);

  uint64_t total_bytes() const { return total_; }
  bool truncated() const { return total_ > cap_; }
  // Bytes written to the spill sink, and whether it holds everything.
  uint64_t spilled_bytes() const { return spilled_; }
  bool spill_complete() const { return spill_ok_ && spilled_ == total_; }
  const std::string& spill_error() const { return spill_error_; }

  // Everything when not truncated; otherwise head + marker + tail. `where` names the spill file.
  std::string Text(std::string_view where) const;
  // New text since the last call (for progress notifications), capped to `max` bytes.
  std::string TakeFresh(size_t max);

 private:
  void Spill(std::string_view data);

  uint64_t cap_;
  uint64_t spill_cap_;
  SpillOpener opener_;
  std::function<Status(std::string_view)> spill_;
  bool spill_tried_ = false;
  bool spill_ok_ = false;
  std::string spill_error_;
  uint64_t spilled_ = 0;

  std::string head_;
  std::string tail_;  // last cap/2 bytes once past the head
  uint64_t total_ = 0;
  std::string fresh_;
};

}  // namespace mcpx::session
