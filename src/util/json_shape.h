// The shape of JSON text, measured without parsing it: how deep it nests and about how many
// values it holds. Parsing untrusted text builds a tree that costs ~40x the text and that
// nlohmann copies and dumps recursively; checking the shape first bounds both.
#pragma once

#include <cstddef>
#include <string_view>

namespace mcpx {

struct JsonShape {
  size_t depth = 0;   // deepest nesting of arrays and objects
  size_t values = 0;  // containers plus separators: at least the number of values, minus one
};

// One linear pass; strings (escapes included) are skipped. Text that is not JSON gets some
// shape too: the parse that follows rejects it.
JsonShape MeasureJson(std::string_view text);

}  // namespace mcpx
