#include "session/output_buffer.h"

#include <algorithm>
#include <utility>

namespace mcpx::session {
namespace {

std::string HumanBytes(uint64_t n) {
  if (n >= (1u << 20)) return std::to_string(n >> 20) + " MiB";
  if (n >= (1u << 10)) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

}  // namespace

void OutputBuffer::Append(std::string_view data) {
  if (data.empty()) return;
  constexpr size_t kFreshCap = 64 << 10;  // progress messages only need a glimpse
  if (fresh_.size() < kFreshCap) {
    fresh_.append(data.substr(0, Utf8SafePrefix(data, kFreshCap - fresh_.size())));
  }
  total_ += data.size();

  const size_t half = static_cast<size_t>(cap_ / 2);
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
    spill_error_ = "output beyond " + HumanBytes(spill_cap_) + " was discarded";
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

std::string OutputBuffer::Text(std::string_view where) const {
  if (!truncated()) return head_ + tail_;
  const size_t half = static_cast<size_t>(cap_ / 2);
  std::string out = head_.substr(0, Utf8SafePrefix(head_, head_.size()));
  std::string_view tail = tail_;
  if (tail.size() > half) tail = tail.substr(tail.size() - half);
  tail = tail.substr(Utf8SafeStart(tail, 0));
  const uint64_t omitted = total_ - out.size() - tail.size();
  out += "\n[... " + HumanBytes(omitted) + " omitted of " + HumanBytes(total_) + " total; ";
  if (!where.empty() && spill_complete()) {
    out += "full output saved to " + std::string(where);
  } else if (!where.empty() && spilled_ > 0) {
    out += "first " + HumanBytes(spilled_) + " saved to " + std::string(where) + " (" +
           spill_error_ + ")";
  } else {
    out += "full output not saved" + (spill_error_.empty() ? "" : ": " + spill_error_);
  }
  out += " ...]\n";
  out += tail;
  return out;
}

std::string OutputBuffer::TakeFresh(size_t max) {
  std::string out;
  out.swap(fresh_);
  if (out.size() > max) out.resize(Utf8SafePrefix(out, max));
  return out;
}

}  // namespace mcpx::session
