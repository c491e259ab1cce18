#include "mcp/tool.h"

#include <utility>

namespace mcpx::mcp {

json TextContent(std::string text) { return json{{"type", "text"}, {"text", std::move(text)}}; }

json ErrorResult(std::string message) {
  return json{{"content", json::array({TextContent(std::move(message))})}, {"isError", true}};
}

json TextResult(std::string text) {
  return json{{"content", json::array({TextContent(std::move(text))})}, {"isError", false}};
}

json StructuredResult(json structured, std::string text, bool is_error) {
  return json{{"content", json::array({TextContent(std::move(text))})},
              {"structuredContent", std::move(structured)},
              {"isError", is_error}};
}

}  // namespace mcpx::mcp
