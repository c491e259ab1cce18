// The untrusted boundary: every frame a kernel writes on its control channel (fd 3) becomes a
// typed, validated KernelFrame here, or an error that ends that kernel. User code can write fd 3,
// so nothing past this file sees the sandbox's JSON: every string is capped, every number
// range-checked, every image checked by its PNG header (size and pixel count), and nothing of
// the frame is kept but these fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "session/server_policy.h"
#include "util/status.h"

namespace mcpx::session {

// Per-image caps the server enforces whatever the kernel says (and tells the kernel to fit).
inline constexpr uint64_t kImageMaxPixels = uint64_t{4096} * 4096;
inline constexpr uint32_t kImageMaxSide = 16384;

struct FrameLimits {
  uint64_t max_frame_bytes = 0;  // the largest honest reply, see MaxFrameBytes
  uint32_t max_images = 0;
  uint64_t image_bytes = 0;
  uint64_t image_pixels = kImageMaxPixels;
};

// Sized to the largest reply an honest kernel sends under `limits`: its inline images in base64
// plus room for the result, traceback, notes and a few thousand saved-image paths.
FrameLimits FrameLimitsFor(const SessionSettings& settings);

struct PreloadFailure {
  std::string module;
  std::string error;
};

struct ErrorInfo {
  std::string type;
  std::string message;
  std::string traceback;
};

struct CheckedImage {
  std::string data;  // canonical base64 of a PNG
  uint32_t width = 0;
  uint32_t height = 0;
  uint64_t bytes = 0;
};

struct KernelFrame {
  enum class Kind { kReady, kResult, kError, kInstall, kOther };
  Kind kind = Kind::kOther;
  std::optional<uint64_t> id;  // only an unsigned integer id can match a request of ours

  // kReady
  std::vector<PreloadFailure> failed_preloads;
  // kResult ("ok" or "error"), or kError (the kernel refused the request)
  std::string status;
  std::optional<std::string> result;
  std::optional<ErrorInfo> error;
  std::vector<CheckedImage> images;
  size_t dropped_images = 0;  // not well-formed PNGs within the caps, or past max_images
  std::vector<std::string> saved_images;
  std::vector<std::string> notes;
  std::optional<double> cpu_ms;
  // Top-level modules the session imported since its previous reply (names checked).
  std::vector<std::string> imports;

  // kInstall: a cell's `%pip install` (package_port.h); the requirement is checked later.
  std::string requirement;
  bool upgrade = false;
};

// Caps on what a frame may carry into a reply; an honest kernel stays far below them.
inline constexpr size_t kMaxResultChars = 64u << 10;
inline constexpr size_t kMaxTracebackChars = 64u << 10;
inline constexpr size_t kMaxMessageChars = 8u << 10;
inline constexpr size_t kMaxNotes = 16;
inline constexpr size_t kMaxNoteChars = 2u << 10;
inline constexpr size_t kMaxSavedPaths = 64;
inline constexpr size_t kMaxPreloadFailures = 16;
inline constexpr size_t kMaxImportsPerFrame = 2000;
inline constexpr size_t kMaxModuleNameChars = 100;
inline constexpr size_t kMaxRequirementChars = 1024;

// `payload` is one frame's JSON text. An error names what was wrong, as a noun phrase ("a
// control frame ..."), and means the kernel broke the protocol.
Result<KernelFrame> ParseKernelFrame(std::string_view payload, const FrameLimits& limits);

// The PNG's size from its IHDR chunk, when `b64` is canonical base64 of a PNG within the caps.
std::optional<CheckedImage> CheckPng(const std::string& b64, const FrameLimits& limits);

}  // namespace mcpx::session
