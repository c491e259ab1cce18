// A captured stream as text a model reads: the kept head and tail around one marker that says
// exactly what was left out and where all of it is. The reply (tools/execute_result.cc) and the
// session's notebook record write the same text.
#pragma once

#include <cstdint>
#include <string>

#include "session/execution.h"

namespace mcpx::session {

// "[... 998,490 lines (6.6 MiB) not shown"
std::string OmittedText(const OutputCut& cut);
// Where all of the stream is and how to read on from `cut`: "all 1,000,000 lines:
// /workspace/.mcp-executor/outputs/s-3-stdout.txt; read_file offset=4090 limit=8192 reads on
// from here", or why it was not saved.
std::string SavedText(const StreamOutput& so, const OutputCut& cut);
// The view, with `marker` on its own line in place of the cut.
std::string RenderView(const OutputView& v, const std::string& marker);
// The stream within the policy's budget (`so.full`), marked.
std::string FullText(const StreamOutput& so);

}  // namespace mcpx::session
