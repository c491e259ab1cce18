// Framing of the kernel control channel: 4-byte big-endian length + UTF-8 JSON object
// (sandbox/kernel/PROTOCOL.md). The decoder is incremental and bounded: a frame over the limit is
// an error (the kernel is then treated as broken and restarted), never an allocation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace mcpx::session {

inline constexpr uint32_t kMaxKernelFrameBytes = 32u << 20;
// A real reply is three levels deep (reply -> images -> image) and holds a few dozen values, a
// few thousand when a cell saved many figures. Checked on the text, before a tree is built: a
// JSON tree costs ~40x its text, and copying or dumping one is recursive.
inline constexpr int kMaxKernelFrameDepth = 8;
inline constexpr size_t kMaxKernelFrameValues = 1u << 16;

// kOk, or why `text` nests deeper or holds more values than the limits above. Linear, no
// allocation; strings are skipped with their escapes.
Status CheckFrameShape(std::string_view text);

std::string EncodeFrame(const nlohmann::json& message);

// Linear in the bytes fed, however small the frames: consumed frames only advance an offset,
// and the consumed prefix is dropped once it is the larger part of the buffer.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint64_t max_frame_bytes = kMaxKernelFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}
  void Feed(std::string_view bytes);
  // The next complete frame's payload, nothing when more bytes are needed, or an error for a
  // frame over the limit (decided from its header, before its bytes are buffered). The payload
  // points into the buffer: it stays valid until the next Feed (only Feed moves bytes).
  Result<std::optional<std::string_view>> Next();
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  uint64_t max_frame_bytes_;
  std::string buf_;
  size_t pos_ = 0;  // start of the first unconsumed byte in buf_
};

}  // namespace mcpx::session
