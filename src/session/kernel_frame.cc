#include "session/kernel_frame.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <nlohmann/json.hpp>

#include "session/frame_codec.h"
#include "util/utf8.h"
#include "workspace/encoding.h"

namespace mcpx::session {
namespace {

using json = nlohmann::json;

// contains() + at() rather than find(): GCC's -Wnull-dereference fires inside nlohmann's const
// iterator for find() here.
const json* Field(const json& o, const char* key) {
  if (!o.is_object() || !o.contains(key)) return nullptr;
  return &o.at(key);
}

std::string Str(const json& o, const char* key, const std::string& fallback, size_t cap) {
  const json* v = Field(o, key);
  return v != nullptr && v->is_string() ? CapUtf8(v->get<std::string>(), cap) : fallback;
}

const json& Arr(const json& o, const char* key) {
  static const json kEmpty = json::array();
  const json* v = Field(o, key);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

ErrorInfo ReadError(const json& err, const char* default_type, const char* default_message) {
  return ErrorInfo{Str(err, "type", default_type, 256),
                   Str(err, "message", default_message, kMaxMessageChars),
                   Str(err, "traceback", "", kMaxTracebackChars)};
}

// A Python identifier in ASCII, as the kernel reports top-level module names.
bool IsModuleName(const std::string& s) {
  if (s.empty() || s.size() > kMaxModuleNameChars ||
      std::isdigit(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  for (const char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

void ReadResult(const json& msg, const FrameLimits& limits, KernelFrame& f) {
  f.status = Str(msg, "status", "error", 16) == "ok" ? "ok" : "error";
  if (const json* r = Field(msg, "result"); r != nullptr && r->is_string()) {
    f.result = CapUtf8(r->get<std::string>(), kMaxResultChars);
  }
  if (const json* err = Field(msg, "error"); err != nullptr && err->is_object()) {
    f.error = ReadError(*err, "Error", "");
  }
  for (const auto& img : Arr(msg, "images")) {
    std::optional<CheckedImage> png;
    if (f.images.size() < limits.max_images && img.is_object() &&
        Str(img, "mime_type", "", 32) == "image/png") {
      if (const json* data = Field(img, "data"); data != nullptr && data->is_string()) {
        png = CheckPng(data->get<std::string>(), limits);
      }
    }
    if (png) {
      f.images.push_back(std::move(*png));
    } else {
      ++f.dropped_images;
    }
  }
  for (const auto& p : Arr(msg, "saved_images")) {
    if (p.is_string() && f.saved_images.size() < kMaxSavedPaths) {
      f.saved_images.push_back(CapUtf8(p.get<std::string>(), 1024));
    }
  }
  for (const auto& n : Arr(msg, "notes")) {
    if (n.is_string() && f.notes.size() < kMaxNotes) {
      f.notes.push_back(CapUtf8(n.get<std::string>(), kMaxNoteChars));
    }
  }
  if (const json* c = Field(msg, "cpu_ms"); c != nullptr && c->is_number()) {
    const double v = c->get<double>();
    if (v >= 0 && v < 1e15) f.cpu_ms = v;
  }
  for (const auto& m : Arr(msg, "imports")) {
    if (f.imports.size() >= kMaxImportsPerFrame) break;
    if (m.is_string() && IsModuleName(m.get_ref<const std::string&>())) {
      f.imports.push_back(m.get<std::string>());
    }
  }
}

}  // namespace

FrameLimits FrameLimitsFor(const SessionSettings& limits) {
  FrameLimits f;
  f.max_images = limits.max_images;
  f.image_bytes = limits.image_bytes;
  const uint64_t images = uint64_t{limits.max_images} * ((limits.image_bytes + 2) / 3 * 4 + 256);
  f.max_frame_bytes = std::min<uint64_t>(images + (4u << 20), kMaxKernelFrameBytes);
  return f;
}

std::optional<CheckedImage> CheckPng(const std::string& b64, const FrameLimits& limits) {
  if (b64.size() > (limits.image_bytes / 3 + 1) * 4 + 4) return std::nullopt;
  auto raw = workspace::Base64Decode(b64);
  if (!raw.ok() || raw->size() < 33 || raw->size() > limits.image_bytes) return std::nullopt;
  // Only canonical base64 goes to the client (no whitespace or other leniency of the decoder).
  if (workspace::Base64Encode(*raw) != b64) return std::nullopt;
  static constexpr unsigned char kSig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  // Signature, then the IHDR chunk first, with its length of 13.
  if (std::memcmp(raw->data(), kSig, sizeof kSig) != 0 ||
      raw->compare(8, 8, std::string("\0\0\0\x0dIHDR", 8)) != 0) {
    return std::nullopt;
  }
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>((*raw)[at + i]);
    return v;
  };
  const uint32_t width = be32(16);
  const uint32_t height = be32(20);
  // A client decodes what the header declares: a few hundred bytes of PNG can declare gigapixels.
  if (width == 0 || height == 0 || width > kImageMaxSide || height > kImageMaxSide ||
      uint64_t{width} * height > limits.image_pixels) {
    return std::nullopt;
  }
  return CheckedImage{b64, width, height, raw->size()};
}

Result<KernelFrame> ParseKernelFrame(std::string_view payload, const FrameLimits& limits) {
  RETURN_IF_ERROR(CheckFrameShape(payload));
  const json msg = json::parse(payload.begin(), payload.end(), nullptr, false);
  if (msg.is_discarded() || !msg.is_object()) {
    return Status(Code::kInternal, "a control frame that is not a JSON object");
  }
  const json* type = Field(msg, "type");
  if (type == nullptr || !type->is_string()) {
    return Status(Code::kInternal, "a control frame without a string 'type'");
  }
  KernelFrame f;
  if (const json* id = Field(msg, "id"); id != nullptr && id->is_number_unsigned()) {
    f.id = id->get<uint64_t>();
  }
  const std::string& kind = type->get_ref<const std::string&>();
  if (kind == "ready") {
    f.kind = KernelFrame::Kind::kReady;
    for (const auto& p : Arr(msg, "failed_preloads")) {
      if (f.failed_preloads.size() >= kMaxPreloadFailures) break;
      f.failed_preloads.push_back(
          {Str(p, "module", "?", 128), Str(p, "error", "", kMaxNoteChars / 4)});
    }
  } else if (kind == "result") {
    f.kind = KernelFrame::Kind::kResult;
    ReadResult(msg, limits, f);
  } else if (kind == "install") {
    f.kind = KernelFrame::Kind::kInstall;
    const json* req = Field(msg, "requirement");
    if (req == nullptr || !req->is_string() || req->get_ref<const std::string&>().empty() ||
        req->get_ref<const std::string&>().size() > kMaxRequirementChars) {
      return Status(Code::kInternal, "an install frame without a requirement string of at most " +
                                         std::to_string(kMaxRequirementChars) + " bytes");
    }
    f.requirement = req->get<std::string>();
    const json* up = Field(msg, "upgrade");
    f.upgrade = up != nullptr && up->is_boolean() && up->get<bool>();
  } else if (kind == "error") {
    f.kind = KernelFrame::Kind::kError;
    f.status = "error";
    const json* err = Field(msg, "error");
    f.error = ReadError(err != nullptr ? *err : json::object(), "KernelError",
                        "the kernel could not run the request");
    f.error->traceback.clear();
  }
  return f;
}

}  // namespace mcpx::session
