#include "session/frame_codec.h"

#include "util/json_shape.h"

namespace mcpx::session {

std::string EncodeFrame(const nlohmann::json& message) {
  const std::string payload =
      message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto n = static_cast<uint32_t>(payload.size());
  std::string out;
  out.reserve(4 + payload.size());
  out.push_back(static_cast<char>((n >> 24) & 0xFF));
  out.push_back(static_cast<char>((n >> 16) & 0xFF));
  out.push_back(static_cast<char>((n >> 8) & 0xFF));
  out.push_back(static_cast<char>(n & 0xFF));
  out += payload;
  return out;
}

Status CheckFrameShape(std::string_view text) {
  const JsonShape shape = MeasureJson(text);
  if (shape.depth > kMaxKernelFrameDepth) {
    return Status(Code::kInternal, "a control frame nested deeper than " +
                                       std::to_string(kMaxKernelFrameDepth) + " levels");
  }
  if (shape.values > kMaxKernelFrameValues) {
    return Status(Code::kInternal, "a control frame of more than " +
                                       std::to_string(kMaxKernelFrameValues) + " values");
  }
  return Status::Ok();
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ >= buf_.size() - pos_) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<std::string_view>> FrameDecoder::Next() {
  const std::string_view rest = std::string_view(buf_).substr(pos_);
  if (rest.size() < 4) return std::optional<std::string_view>();
  const auto b = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(rest[i]));
  };
  const uint32_t n = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
  if (n > max_frame_bytes_) {
    return Status(Code::kInternal, "a control frame of " + std::to_string(n) + " bytes (limit " +
                                       std::to_string(max_frame_bytes_) +
                                       " for this policy's replies)");
  }
  if (rest.size() < 4 + static_cast<size_t>(n)) return std::optional<std::string_view>();
  pos_ += 4 + static_cast<size_t>(n);
  return std::optional<std::string_view>(rest.substr(4, n));
}

}  // namespace mcpx::session
