#include "session/stream_text.h"

#include "util/units.h"

namespace mcpx::session {
namespace {

std::string Plural(uint64_t n, const char* word) {
  return Thousands(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

std::string OmittedText(const OutputCut& cut) {
  return "[... " + Plural(cut.lines, "line") + " (" + HumanSize(cut.bytes) + ") not shown";
}

std::string SavedText(const StreamOutput& so, const OutputCut& cut) {
  if (so.saved.empty()) {
    return "the whole output was not saved" +
           (so.save_error.empty() ? std::string() : ": " + so.save_error);
  }
  std::string s = so.saved_bytes < so.bytes ? "the first " + HumanSize(so.saved_bytes) +
                                                  " are in " + so.saved + " (" + so.save_error + ")"
                                            : "all " + Plural(so.lines, "line") + ": " + so.saved;
  return s + "; read_file offset=" + std::to_string(cut.offset) +
         " limit=" + std::to_string(so.budget) + " reads on from here";
}

std::string RenderView(const OutputView& v, const std::string& marker) {
  if (!v.cut) return v.head;
  std::string out = v.head;
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out + marker + "\n" + v.tail;
}

std::string FullText(const StreamOutput& so) {
  if (!so.full.cut) return so.full.head;
  return RenderView(so.full, OmittedText(*so.full.cut) + "; " + SavedText(so, *so.full.cut) + "]");
}

}  // namespace mcpx::session
