#include "session/output_buffer.h"

#include <algorithm>
#include <utility>

#include "util/units.h"

namespace mcpx::session {
namespace {

// An unfinished line longer than this is committed as it stands: a later `\r` then only starts
// over what came after it. Bounds memory for output without any line break.
constexpr size_t kMaxPendingLine = 64 << 10;
constexpr size_t kFreshCap = 64 << 10;  // progress messages only need a glimpse

uint64_t CountNewlines(std::string_view s) {
  return static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n'));
}

// The longest prefix of `s` within `max` bytes (s is longer) that ends a line, unless that
// would give up more than half of the room (one long line): then a cut between UTF-8 characters.
size_t HeadCut(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  const size_t nl = s.substr(0, max).rfind('\n');
  if (nl != std::string_view::npos && nl + 1 >= max / 2) return nl + 1;
  return Utf8SafePrefix(s, max);
}

// Where the longest suffix of `s` within `max` bytes (s is longer) that starts a line begins
// (same rule).
size_t TailStart(std::string_view s, size_t max) {
  if (s.size() <= max) return 0;
  const size_t from = s.size() - max;
  if (s[from - 1] == '\n') return from;
  const size_t nl = s.find('\n', from);
  if (nl != std::string_view::npos && s.size() - (nl + 1) >= max / 2) return nl + 1;
  return Utf8SafeStart(s, from);
}

}  // namespace

void OutputBuffer::Append(std::string_view data) {
  while (!data.empty()) {
    const size_t special = data.find_first_of("\r\n");
    std::string_view text = data.substr(0, special);
    if (!text.empty()) {
      if (carriage_return_) {
        pending_.clear();
        carriage_return_ = false;
      }
      pending_.append(text);
      pending_shown_ = false;
      if (pending_.size() > kMaxPendingLine) {
        Commit(pending_);
        pending_.clear();
      }
    }
    if (special == std::string_view::npos) break;
    if (data[special] == '\n') {
      pending_ += '\n';
      Commit(pending_);
      pending_.clear();
      carriage_return_ = false;
    } else {
      carriage_return_ = true;  // "\r\n" ends the line as it stands; text after starts it over
    }
    data.remove_prefix(special + 1);
  }
}

void OutputBuffer::Finish() {
  if (!pending_.empty()) Commit(pending_);
  pending_.clear();
  carriage_return_ = false;
}

void OutputBuffer::Commit(std::string_view data) {
  if (data.empty()) return;
  if (fresh_.size() < kFreshCap) {
    fresh_.append(data.substr(0, Utf8SafePrefix(data, kFreshCap - fresh_.size())));
  }
  pending_shown_ = false;
  total_ += data.size();
  newlines_ += CountNewlines(data);
  ends_in_newline_ = data.back() == '\n';

  // One byte more than a view shows at either end: a view can tell whether its edge falls on a
  // line break.
  const size_t half = static_cast<size_t>(cap_ / 2) + 1;
  const size_t take = head_.size() < half ? std::min(half - head_.size(), data.size()) : 0;
  head_.append(data.substr(0, take));
  const std::string_view rest = data.substr(take);

  // Past the cap, everything goes to the spill file too: on the first crossing, the head and the
  // bytes after it (tail_ is still complete then: it holds at most cap - half bytes).
  if (total_ > cap_) {
    if (!spill_tried_) {
      spill_tried_ = true;
      auto opened =
          opener_
              ? opener_()
              : Result<std::function<Status(std::string_view)>>(Internal("no spill destination"));
      if (opened.ok()) {
        spill_ = std::move(opened).value();
        spill_ok_ = true;
        Spill(head_);
        Spill(tail_);
      } else {
        spill_error_ = opened.status().ToString();
      }
    }
    Spill(rest);
  }

  tail_.append(rest);
  if (tail_.size() > half + (64 << 10)) tail_.erase(0, tail_.size() - half);
}

void OutputBuffer::Spill(std::string_view data) {
  if (!spill_ok_ || data.empty()) return;
  if (spilled_ + data.size() > spill_cap_) {
    data = data.substr(0, static_cast<size_t>(spill_cap_ - spilled_));
    spill_ok_ = false;
    spill_error_ = "output beyond " + HumanSize(spill_cap_) + " was discarded";
  }
  if (!data.empty()) {
    if (auto st = spill_(data); !st.ok()) {
      spill_ok_ = false;
      spill_error_ = st.ToString();
      return;
    }
    spilled_ += data.size();
  }
}

OutputView OutputBuffer::View(uint64_t budget) const {
  budget = std::min(budget, cap_);
  // Within the cap, head_ + tail_ is the whole text; past it, head_ is its first cap/2 + 1 bytes
  // and tail_ (at least cap/2 + 1 bytes) its last.
  OutputView view;
  std::string whole;
  std::string_view head = head_, tail = tail_;
  if (!truncated()) {
    whole = head_ + tail_;
    if (whole.size() <= budget) {
      view.head = std::move(whole);
      return view;
    }
    head = tail = whole;
  }
  const size_t half = static_cast<size_t>(budget / 2);
  view.head = std::string(head.substr(0, HeadCut(head, half)));
  view.tail = std::string(tail.substr(TailStart(tail, half)));
  OutputCut cut;
  cut.offset = view.head.size();
  cut.bytes = total_ - view.head.size() - view.tail.size();
  cut.lines = newlines_ - CountNewlines(view.head) - CountNewlines(view.tail);
  view.cut = cut;
  return view;
}

std::string OutputBuffer::TakeFresh(size_t max) {
  std::string out;
  out.swap(fresh_);
  if (!pending_.empty() && !pending_shown_ && out.size() < max) {
    out += pending_;
    pending_shown_ = true;
  }
  if (out.size() > max) out.resize(Utf8SafePrefix(out, max));
  return out;
}

}  // namespace mcpx::session
