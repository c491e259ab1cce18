#include "tools/workspace_resources.h"

#include <algorithm>
#include <string>
#include <utility>

#include "workspace/content.h"
#include "workspace/encoding.h"

namespace mcpx::tools {
namespace {

using workspace::Base64Decode;
using workspace::Base64Encode;
using workspace::Entry;
using workspace::FileType;
using workspace::IsUtf8;
using workspace::Listing;
using workspace::ListOptions;
using workspace::LooksLikeText;
using workspace::MimeFromExtension;
using workspace::MimeFromName;
using workspace::PercentDecode;
using workspace::PercentEncodePath;
using workspace::SniffImageMime;
using workspace::Workspace;

using json = nlohmann::json;

// Walks at most this many entries per page request; a bigger workspace is listed up to it.
constexpr size_t kResourceWalkCap = 100000;
constexpr std::string_view kCursorTag = "after:";

class WorkspaceResources : public mcp::ResourceProvider {
 public:
  explicit WorkspaceResources(std::shared_ptr<Workspace> ws) : ws_(std::move(ws)) {}

  // The cursor names the last path of the previous page (base64, opaque to clients), so pages
  // stay consistent when files appear or vanish between requests.
  Result<json> List(const std::optional<std::string>& cursor) override {
    std::string after;
    if (cursor.has_value()) {
      auto decoded = Base64Decode(*cursor);
      if (!decoded.ok() || !decoded->starts_with(kCursorTag)) {
        return InvalidArgument("invalid cursor (not one this server issued)");
      }
      after = decoded->substr(kCursorTag.size());
    }
    ListOptions options;
    options.recursive = true;
    options.max_entries = kResourceWalkCap;
    ASSIGN_OR_RETURN(Listing listing, ws_->List(".", options));

    auto it = std::upper_bound(listing.entries.begin(), listing.entries.end(), after,
                               [](const std::string& a, const Entry& e) { return a < e.path; });
    auto is_file = [](const Entry& e) { return e.type == FileType::kFile; };
    json resources = json::array();
    std::string last;
    for (it = std::find_if(it, listing.entries.end(), is_file);
         it != listing.entries.end() && resources.size() < kResourcesPageSize;
         it = std::find_if(it + 1, listing.entries.end(), is_file)) {
      json r = {{"uri", ResourceUri(it->path)}, {"name", it->path}, {"size", it->size}};
      if (auto mime = MimeFromExtension(it->path)) r["mimeType"] = *mime;
      resources.push_back(std::move(r));
      last = it->path;
    }
    json result = {{"resources", std::move(resources)}};
    if (it != listing.entries.end()) {
      result["nextCursor"] = Base64Encode(std::string(kCursorTag) + last);
    }
    return result;
  }

  Result<json> Read(const std::string& uri) override {
    ASSIGN_OR_RETURN(std::string rel, PathFromResourceUri(*ws_, uri));
    auto read = ws_->Read(rel, 0, kResourceReadCap + 1);
    if (!read.ok()) {
      // Not there (or a dangling link) is "unknown resource"; everything else is the URI's fault.
      if (read.status().code() == Code::kNotFound) return read.status();
      return Status(Code::kInvalidArgument, read.status().message(), read.status().err());
    }
    if (read->size > kResourceReadCap || read->data.size() > kResourceReadCap) {
      return Status(Code::kResourceExhausted,
                    "'" + rel + "' is " + std::to_string(read->size) + " bytes, over the " +
                        std::to_string(kResourceReadCap >> 20) +
                        " MiB resources/read cap; use the read_file tool with offset/limit");
    }
    json content = {{"uri", ResourceUri(rel)}};
    if (auto image = SniffImageMime(read->head)) {
      content["mimeType"] = *image;
      content["blob"] = Base64Encode(read->data);
    } else if (LooksLikeText(read->data) && IsUtf8(read->data)) {
      content["mimeType"] = MimeFromName(rel, true);
      content["text"] = std::move(read->data);
    } else {
      content["mimeType"] = MimeFromName(rel, false);
      content["blob"] = Base64Encode(read->data);
    }
    return json{{"contents", json::array({std::move(content)})}};
  }

 private:
  std::shared_ptr<Workspace> ws_;
};

}  // namespace

std::string ResourceUri(std::string_view rel) {
  return std::string(kResourceUriPrefix) + PercentEncodePath(rel);
}

Result<std::string> PathFromResourceUri(const Workspace& ws, std::string_view uri) {
  constexpr std::string_view kRoot = "file:///workspace";
  if (uri == kRoot) return std::string(".");
  if (!uri.starts_with(kResourceUriPrefix)) {
    return InvalidArgument("resource URI '" + std::string(uri) + "' is not a workspace file (" +
                           std::string(kResourceUriPrefix) + "<path>)");
  }
  if (uri.find_first_of("?#") != std::string_view::npos) {
    return InvalidArgument("resource URI '" + std::string(uri) +
                           "' has a query or fragment; workspace URIs have neither");
  }
  auto decoded = PercentDecode(uri.substr(kResourceUriPrefix.size()));
  if (!decoded.ok()) return decoded.status().Annotate("resource URI '" + std::string(uri) + "'");
  std::string path = *decoded;
  if (path.empty()) path = ".";
  // Decoding happens before confinement, so "%2e%2e/etc" is judged as "../etc".
  return ws.Confine(path);
}

std::unique_ptr<mcp::ResourceProvider> MakeWorkspaceResources(std::shared_ptr<Workspace> ws) {
  return std::make_unique<WorkspaceResources>(std::move(ws));
}

}  // namespace mcpx::tools
