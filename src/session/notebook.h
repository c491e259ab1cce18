// A session's record as a Jupyter notebook (nbformat 4.5): what the assistant ran and what came
// back, for a person who wants to review or rerun the analysis. This file only builds and reads
// the JSON; notebook_recorder.h decides where it goes and when it is written.
//
// One code cell per execution, with the reply's view of it: stdout and stderr as the reply
// carried them (capped, with their marker), the last expression's repr, one display_data per
// inline image, the exception, and a stderr note for a timeout, cancellation or kill. Markdown
// cells mark where a kernel's state was lost. Multi-line strings are stored as lists of lines, as
// Jupyter writes them, so two versions of a record diff line by line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "session/execution.h"
#include "util/status.h"

namespace mcpx::session::notebook {

// Key of the notebook's and the cells' own metadata.
inline constexpr const char* kMetadataKey = "mcp-executor";
// Cell metadata kind of the markdown cell that says a kernel's state was lost.
inline constexpr const char* kStateLostKind = "state-lost";

// An empty notebook whose metadata names `session` (that is how a later server knows it may
// append to the file).
nlohmann::json NewNotebook(const std::string& session);

// The cell of one execution. With `keep_images` false each image becomes a one-line note (the
// notebook reached its size cap) instead of its PNG.
nlohmann::json CodeCell(const std::string& code, const ExecOutcome& outcome, bool keep_images);

// A markdown cell; `kind` goes into its metadata (kStateLostKind, or "" for none).
nlohmann::json MarkdownCell(const std::string& text, std::string_view kind = "");

// Appends `cell` to the notebook, with an `id` no other cell of it has (nbformat 4.5 requires one).
void AppendCell(nlohmann::json& nb, nlohmann::json cell);

// Whether the last cell is a state-lost note (so a second one is not added after it).
bool EndsWithStateLost(const nlohmann::json& nb);

// The file's text: indented like Jupyter's (one space), invalid UTF-8 replaced, never throws.
std::string Serialize(const nlohmann::json& nb);

// `text` as a record of `session` that may be appended to: nbformat 4.5 or later minor, a cells
// array of objects, and metadata naming this session. Anything else is an error saying why
// (the recorder then starts a new file beside it rather than touch it).
Result<nlohmann::json> ParseRecord(std::string_view text, const std::string& session);

}  // namespace mcpx::session::notebook
