// Arbitrary bytes from a sandbox through the kernel-frame boundary: the control channel's framing
// and parse (session/frame_codec, session/kernel_frame) interleaved with output on the two pipes
// (session/output_buffer), in any order, sizes and split points.
//
// Input: a sequence of records `channel (1 byte) | length (2 bytes, big-endian) | bytes`.
// Channel % 3: 0 = control channel, 1 = stdout, 2 = stderr. The first byte also picks the
// policy's image caps. Beyond "no crash, no sanitizer report", it checks what the server relies
// on past the boundary: every string within its cap, every image a PNG within the caps, the
// decoder's buffer bounded by one frame and one read.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "session/frame_codec.h"
#include "session/kernel_frame.h"
#include "session/output_buffer.h"
#include "session/server_policy.h"
#include "workspace/encoding.h"

namespace {

using mcpx::session::FrameLimits;
using mcpx::session::KernelFrame;

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s\n", what);
    abort();
  }
}

void CheckFrame(const KernelFrame& f, const FrameLimits& limits) {
  using namespace mcpx::session;
  constexpr size_t kMarker = 64;  // "... [N bytes omitted]"
  if (f.result) Check(f.result->size() <= kMaxResultChars + kMarker, "result over its cap");
  if (f.error) {
    Check(f.error->message.size() <= kMaxMessageChars + kMarker, "message over its cap");
    Check(f.error->traceback.size() <= kMaxTracebackChars + kMarker, "traceback over its cap");
  }
  Check(f.notes.size() <= kMaxNotes, "too many notes");
  Check(f.saved_images.size() <= kMaxSavedPaths, "too many saved paths");
  Check(f.failed_preloads.size() <= kMaxPreloadFailures, "too many preload failures");
  Check(f.images.size() <= limits.max_images, "more images than the policy allows");
  for (const auto& img : f.images) {
    auto raw = mcpx::workspace::Base64Decode(img.data);
    Check(raw.ok() && raw->size() == img.bytes, "image bytes do not match its data");
    Check(img.bytes <= limits.image_bytes, "image over the byte cap");
    Check(img.width > 0 && img.height > 0, "empty image passed");
    Check(uint64_t{img.width} * img.height <= limits.image_pixels, "image over the pixel cap");
    Check(raw->compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0, "not a PNG");
  }
  Check(f.status.empty() || f.status == "ok" || f.status == "error", "status not ok/error");
  Check(f.imports.size() <= kMaxImportsPerFrame, "too many imports");
  for (const auto& m : f.imports) {
    Check(!m.empty() && m.size() <= kMaxModuleNameChars, "import name out of bounds");
  }
  Check(f.requirement.size() <= kMaxRequirementChars, "requirement over its cap");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  mcpx::session::SessionSettings policy;
  policy.max_images = data[0] % 4;
  policy.image_bytes = uint64_t{16} << (10 + data[0] / 64);  // 16 KiB .. 128 KiB
  const FrameLimits limits = mcpx::session::FrameLimitsFor(policy);

  mcpx::session::FrameDecoder decoder(limits.max_frame_bytes);
  std::string spill;
  auto opener = [&spill]() -> mcpx::Result<std::function<mcpx::Status(std::string_view)>> {
    return std::function<mcpx::Status(std::string_view)>([&spill](std::string_view d) {
      spill.append(d);
      return mcpx::Status::Ok();
    });
  };
  mcpx::session::OutputBuffer out(4096, 1 << 16, opener);
  mcpx::session::OutputBuffer err(4096, 1 << 16, opener);

  size_t at = 1;
  bool broken = false;
  while (at + 3 <= size && !broken) {
    const int channel = data[at] % 3;
    const size_t len = std::min<size_t>((size_t{data[at + 1]} << 8) | data[at + 2], size - at - 3);
    const std::string_view chunk(reinterpret_cast<const char*>(data + at + 3), len);
    at += 3 + len;
    if (channel != 0) {
      (channel == 1 ? out : err).Append(chunk);
      continue;
    }
    decoder.Feed(chunk);
    for (;;) {
      auto next = decoder.Next();
      if (!next.ok()) {
        broken = true;  // the server kills the kernel here
        break;
      }
      if (!next->has_value()) break;
      auto frame = mcpx::session::ParseKernelFrame(**next, limits);
      if (!frame.ok()) {
        broken = true;
        break;
      }
      CheckFrame(*frame, limits);
    }
    Check(decoder.buffered() <= limits.max_frame_bytes + 4 + 65536, "decoder buffer unbounded");
  }
  // What the reply shows of the streams: within each budget, and the cut accounts for the rest.
  for (mcpx::session::OutputBuffer* b : {&out, &err}) {
    b->Finish();
    (void)b->TakeFresh(4096);
    for (uint64_t budget : {uint64_t{2048}, uint64_t{4096}}) {
      const mcpx::session::OutputView v = b->View(budget);
      Check(v.head.size() + v.tail.size() <= budget || !v.cut, "view over its budget");
      if (v.cut) {
        Check(v.cut->offset == v.head.size(), "cut offset is not the head's end");
        Check(v.head.size() + v.cut->bytes + v.tail.size() == b->total_bytes(),
              "cut does not account for the text left out");
      } else {
        Check(v.head.size() == b->total_bytes(), "an uncut view is not the whole text");
      }
    }
  }
  return 0;
}
