// Bounded capture of one output stream (stdout or stderr) of one execution.
//
// A cell may print without end; the server's memory must not grow with it. The buffer keeps the
// first and last `cap/2` bytes (and one more); once the total passes `cap`, everything (head
// included) is also streamed to a spill sink (a file in the workspace) up to `spill_cap` bytes, so
// the full text can be named in the reply.
//
// Carriage returns collapse as a terminal shows them: a line redrawn with `\r` (a progress bar)
// keeps only its final state, in the reply, in the saved file and in progress messages. Text()
// cuts head and tail at line boundaries (a line longer than the budget is cut between UTF-8
// characters) and names the part left out by its byte offset, size and line count.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"
#include "util/utf8.h"

namespace mcpx::session {

// The part of a stream's text that a view leaves out.
struct OutputCut {
  uint64_t offset = 0;  // where it starts in the whole (collapsed) text, in bytes
  uint64_t bytes = 0;
  uint64_t lines = 0;  // line breaks in it
};

// A stream's text within a byte budget: all of it in `head`, or head and tail around a cut.
struct OutputView {
  std::string head;
  std::string tail;
  std::optional<OutputCut> cut;
};

class OutputBuffer {
 public:
  // Opens the spill destination on first need; returns a writer or an error. Called at most once.
  using SpillOpener = std::function<Result<std::function<Status(std::string_view)>>()>;

  OutputBuffer(uint64_t cap, uint64_t spill_cap, SpillOpener opener)
      : cap_(cap), spill_cap_(spill_cap), opener_(std::move(opener)) {}

  void Append(std::string_view data);
  // Ends the stream: the last, unterminated line is kept as it stands. Call before reading the
  // totals or the text; Append after Finish starts a new line.
  void Finish();

  uint64_t total_bytes() const { return total_; }
  uint64_t total_lines() const { return newlines_ + (ends_in_newline_ || total_ == 0 ? 0 : 1); }
  bool truncated() const { return total_ > cap_; }
  // Bytes written to the spill sink, and whether it holds everything.
  uint64_t spilled_bytes() const { return spilled_; }
  bool spill_complete() const { return spill_ok_ && spilled_ == total_; }
  const std::string& spill_error() const { return spill_error_; }

  // Everything when it fits `budget` bytes (at most the cap); otherwise head and tail, each
  // within half of it.
  OutputView View(uint64_t budget) const;
  // New text since the last call (for progress notifications), capped to `max` bytes: finished
  // lines, then the current state of an unfinished one.
  std::string TakeFresh(size_t max);

 private:
  void Commit(std::string_view data);
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
  std::string tail_;  // last cap/2 + 1 bytes once past the head
  uint64_t total_ = 0;
  uint64_t newlines_ = 0;
  bool ends_in_newline_ = false;
  std::string fresh_;

  // The line being written: a `\r` in it means the next character starts it over.
  std::string pending_;
  bool carriage_return_ = false;
  bool pending_shown_ = false;  // TakeFresh has shown pending_ as it is now
};

}  // namespace mcpx::session
