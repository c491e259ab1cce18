#include "tools/file_tools.h"

#include <string>
#include <utility>

#include "mcp/tool.h"
#include "tools/annotations.h"
#include "tools/args.h"
#include "tools/workspace_resources.h"
#include "util/units.h"
#include "workspace/content.h"
#include "workspace/encoding.h"
#include "workspace/path.h"

namespace mcpx::tools {
namespace {

using json = nlohmann::json;

using mcp::ErrorResult;
using mcp::StructuredResult;
using mcp::TextContent;
using mcp::TextResult;
using mcp::Tool;
using mcp::ToolCallPtr;
using workspace::Workspace;

json PathProperty(std::string_view what) {
  return {{"type", "string"},
          {"description", std::string(what) +
                              " Relative to the workspace; '/workspace/...' (the path Python code "
                              "sees) is accepted too."}};
}

// Paths in text output: control characters (newlines in hostile names) escaped so one entry stays
// one line; structuredContent carries the exact bytes.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

class ReadFileTool : public Tool {
 public:
  explicit ReadFileTool(std::shared_ptr<Workspace> ws) : ws_(std::move(ws)) {}

  json Definition() const override {
    return {
        {"name", "read_file"},
        {"title", "Read a workspace file"},
        {"description",
         "Reads a file from the workspace. UTF-8 text comes back as text; PNG/JPEG/GIF/WebP images "
         "as an image (whole file, up to " +
             MiB(kImageCap) +
             "); other binary data as a base64 "
             "resource. At most " +
             std::to_string(kReadDefaultLimit / 1024) +
             " KiB per call by "
             "default: when more remains, the reply says which offset to read next."},
        {"inputSchema",
         {{"type", "object"},
          {"properties",
           {{"path", PathProperty("File to read.")},
            {"offset",
             {{"type", "integer"},
              {"minimum", 0},
              {"description", "Byte offset to start at (default 0)."}}},
            {"limit",
             {{"type", "integer"},
              {"minimum", 1},
              {"description", "Maximum bytes to return (default " +
                                  std::to_string(kReadDefaultLimit) + ", at most " +
                                  std::to_string(kReadMaxLimit) + ")."}}}}},
          {"required", {"path"}},
          {"additionalProperties", false}}},
        {"outputSchema",
         {{"type", "object"},
          {"properties",
           {{"path", {{"type", "string"}, {"description", "Path relative to the workspace."}}},
            {"kind", {{"type", "string"}, {"enum", {"text", "image", "binary"}}}},
            {"mime_type", {{"type", "string"}}},
            {"size", {{"type", "integer"}, {"description", "File size in bytes."}}},
            {"offset", {{"type", "integer"}}},
            {"bytes", {{"type", "integer"}, {"description", "Bytes returned by this call."}}},
            {"next_offset",
             {{"type", "integer"},
              {"description", "Where to continue reading; absent at the end of the file."}}},
            {"truncated", {{"type", "boolean"}}}}},
          {"required", {"path", "kind", "mime_type", "size", "offset", "bytes", "truncated"}},
          {"additionalProperties", false}}},
        {"annotations", Annotations("Read a workspace file", {.read_only = true})},
    };
  }

  void Call(ToolCallPtr call) override { call->Finish(Run(call->arguments())); }

 private:
  json Run(const json& arguments) const {
    auto args = Args::Parse(arguments, {"path", "offset", "limit"});
    if (!args.ok()) return ErrorResult(args.status().message());
    auto path = args->RequiredString("path");
    auto offset_arg = args->OptionalUint("offset");
    auto limit_arg = args->OptionalUint("limit");
    for (const Status* st : {&path.status(), &offset_arg.status(), &limit_arg.status()}) {
      if (!st->ok()) return ErrorResult(st->message());
    }
    if (limit_arg->has_value() && **limit_arg == 0) {
      return ErrorResult("argument 'limit' must be at least 1");
    }
    const uint64_t offset = offset_arg->value_or(0);
    const bool limit_given = limit_arg->has_value();
    const uint64_t limit = std::min(limit_arg->value_or(kReadDefaultLimit), kReadMaxLimit);

    auto read = ws_->Read(*path, offset, limit);
    if (!read.ok()) return ErrorResult(read.status().message());
    workspace::FileRead& r = *read;

    // A whole image (no range asked for) is an image block; a range of it is plain binary.
    if (auto image = workspace::SniffImageMime(r.head); image && offset == 0 && !limit_given) {
      if (r.size > kImageCap) {
        return ErrorResult("image '" + r.path + "' is " + std::to_string(r.size) +
                           " bytes, over the " + MiB(kImageCap) +
                           " cap for image replies; downscale it with execute_python, or read it "
                           "in pieces with offset/limit (returned as base64 resources)");
      }
      if (r.data.size() < r.size) {
        read = ws_->Read(r.path, 0, kImageCap);
        if (!read.ok()) return ErrorResult(read.status().message());
      }
      const uint64_t n = read->data.size();
      json structured = Structured(*read, "image", *image, n, n < read->size);
      return {{"content",
               {TextContent("image '" + read->path + "' (" + *image + ", " + std::to_string(n) +
                            " bytes)"),
                {{"type", "image"},
                 {"data", workspace::Base64Encode(read->data)},
                 {"mimeType", *image}}}},
              {"structuredContent", std::move(structured)},
              {"isError", false}};
    }

    const bool more_after = offset + r.data.size() < r.size;
    if (workspace::LooksLikeText(r.data)) {
      // Never split a UTF-8 character at the end of a page; the next page starts with it.
      size_t keep = r.data.size() - (more_after ? workspace::Utf8IncompleteTail(r.data) : 0);
      if (keep > 0 || r.data.empty()) {
        r.data.resize(keep);
        if (workspace::IsUtf8(r.data)) return TextReply(r);
      }
    }
    return BinaryReply(r);
  }

  json Structured(const workspace::FileRead& r, std::string_view kind, const std::string& mime,
                  uint64_t bytes, bool truncated) const {
    const uint64_t end = r.offset + bytes;
    json s = {{"path", r.path},     {"kind", kind},   {"mime_type", mime},     {"size", r.size},
              {"offset", r.offset}, {"bytes", bytes}, {"truncated", truncated}};
    if (end < r.size) s["next_offset"] = end;
    return s;
  }

  // "[bytes 0-262143 of 1048576 shown; call read_file with offset=262144 for the rest]"
  static std::string RangeNote(const workspace::FileRead& r, uint64_t bytes) {
    const uint64_t end = r.offset + bytes;
    if (r.offset >= r.size) {
      return "[offset " + std::to_string(r.offset) + " is at or past the end of '" + r.path +
             "' (" + std::to_string(r.size) + " bytes)]";
    }
    std::string note = "[bytes " + std::to_string(r.offset) + "-" +
                       std::to_string(end == 0 ? 0 : end - 1) + " of " + std::to_string(r.size);
    if (end < r.size) {
      note += "; more remains: call read_file with offset=" + std::to_string(end) + " to continue]";
    } else {
      note += "; end of file]";
    }
    return note;
  }

  json TextReply(workspace::FileRead& r) const {
    const uint64_t n = r.data.size();
    const uint64_t end = r.offset + n;
    const bool partial = r.offset > 0 || end < r.size;
    json structured = Structured(r, "text", workspace::MimeFromName(r.path, true), n, end < r.size);
    json content = json::array();
    content.push_back(TextContent(std::move(r.data)));
    if (partial || n == 0) content.push_back(TextContent(RangeNote(r, n)));
    return {{"content", std::move(content)},
            {"structuredContent", std::move(structured)},
            {"isError", false}};
  }

  json BinaryReply(const workspace::FileRead& r) const {
    const uint64_t n = r.data.size();
    const std::string mime = workspace::MimeFromName(r.path, false);
    json structured = Structured(r, "binary", mime, n, r.offset + n < r.size);
    std::string text = "binary file '" + r.path + "' (" + mime + ", " + std::to_string(r.size) +
                       " bytes), returned as a base64 resource";
    if (r.offset > 0 || r.offset + n < r.size || n == 0) text += " " + RangeNote(r, n);
    return {{"content",
             {TextContent(std::move(text)),
              {{"type", "resource"},
               {"resource",
                {{"uri", ResourceUri(r.path)},
                 {"mimeType", mime},
                 {"blob", workspace::Base64Encode(r.data)}}}}}},
            {"structuredContent", std::move(structured)},
            {"isError", false}};
  }

  std::shared_ptr<Workspace> ws_;
};

class WriteFileTool : public Tool {
 public:
  explicit WriteFileTool(std::shared_ptr<Workspace> ws) : ws_(std::move(ws)) {}

  json Definition() const override {
    return {
        {"name", "write_file"},
        {"title", "Write a workspace file"},
        {"description",
         "Writes a file in the workspace, creating parent folders. Overwrites unless append is "
         "true; an overwrite is atomic (temporary file + rename): readers see the old or the new "
         "content, never a mix. An append adds to the end in place: all of the content or none. "
         "Refuses symlinks and non-regular files. At most " +
             MiB(kWriteCap) + " per call."},
        {"inputSchema",
         {{"type", "object"},
          {"properties",
           {{"path", PathProperty("File to write.")},
            {"content",
             {{"type", "string"},
              {"description", "The data: text, or base64 when encoding is \"base64\"."}}},
            {"encoding",
             {{"type", "string"},
              {"enum", {"utf-8", "base64"}},
              {"default", "utf-8"},
              {"description",
               "How content is encoded: \"utf-8\" text (default) or \"base64\" "
               "for binary data."}}},
            {"append",
             {{"type", "boolean"},
              {"default", false},
              {"description",
               "Add to the end of the file instead of replacing it (in place; refused for a file "
               "with several hard links)."}}}}},
          {"required", {"path", "content"}},
          {"additionalProperties", false}}},
        {"outputSchema",
         {{"type", "object"},
          {"properties",
           {{"path", {{"type", "string"}, {"description", "Path relative to the workspace."}}},
            {"bytes_written", {{"type", "integer"}}},
            {"size", {{"type", "integer"}, {"description", "File size after the write."}}},
            {"created", {{"type", "boolean"}}},
            {"appended", {{"type", "boolean"}}}}},
          {"required", {"path", "bytes_written", "size", "created", "appended"}},
          {"additionalProperties", false}}},
        {"annotations", Annotations("Write a workspace file", {.destructive = true})},
    };
  }

  void Call(ToolCallPtr call) override { call->Finish(Run(call->arguments())); }

 private:
  json Run(const json& arguments) const {
    auto args = Args::Parse(arguments, {"path", "content", "encoding", "append"});
    if (!args.ok()) return ErrorResult(args.status().message());
    auto path = args->RequiredString("path");
    auto content = args->RequiredString("content");
    auto encoding = args->OptionalString("encoding");
    auto append = args->OptionalBool("append");
    for (const Status* st :
         {&path.status(), &content.status(), &encoding.status(), &append.status()}) {
      if (!st->ok()) return ErrorResult(st->message());
    }
    const std::string enc = encoding->value_or("utf-8");
    std::string data;
    if (enc == "base64") {
      if (content->size() / 4 * 3 > kWriteCap + 3) return TooBig(content->size() / 4 * 3);
      auto decoded = workspace::Base64Decode(*content);
      if (!decoded.ok()) return ErrorResult("argument 'content': " + decoded.status().message());
      data = std::move(*decoded);
    } else if (enc == "utf-8" || enc == "utf8" || enc == "UTF-8") {
      data = std::move(*content);
    } else {
      return ErrorResult("argument 'encoding' must be \"utf-8\" or \"base64\", got \"" + enc +
                         "\"");
    }
    if (data.size() > kWriteCap) return TooBig(data.size());

    workspace::WriteOptions options;
    options.append = append->value_or(false);
    auto written = ws_->WriteFileAtomic(*path, data, options);
    if (!written.ok()) return ErrorResult(written.status().message());
    const auto& w = *written;
    std::string text;
    if (options.append && !w.created) {
      text = "appended " + std::to_string(w.bytes_written) + " bytes to '" + w.path + "' (now " +
             std::to_string(w.size) + " bytes)";
    } else {
      text = "wrote " + std::to_string(w.bytes_written) + " bytes to '" + w.path + "'" +
             (w.created ? " (new file)" : " (replaced)");
    }
    json structured = {{"path", w.path},
                       {"bytes_written", w.bytes_written},
                       {"size", w.size},
                       {"created", w.created},
                       {"appended", options.append}};
    return StructuredResult(std::move(structured), std::move(text));
  }

  static json TooBig(uint64_t size) {
    return ErrorResult("content is " + std::to_string(size) + " bytes, over the " + MiB(kWriteCap) +
                       " write_file cap; write it in parts with append=true");
  }

  std::shared_ptr<Workspace> ws_;
};

class ListFilesTool : public Tool {
 public:
  explicit ListFilesTool(std::shared_ptr<Workspace> ws) : ws_(std::move(ws)) {}

  json Definition() const override {
    return {
        {"name", "list_files"},
        {"title", "List workspace files"},
        {"description",
         "Lists a workspace folder (recursively if asked): path, type (file, directory, symlink, "
         "fifo, socket, device, other), size in bytes and modification time (ISO 8601 UTC), "
         "sorted by path. Symlinks are reported, never followed. At most " +
             std::to_string(kListCap) + " entries."},
        {"inputSchema",
         {{"type", "object"},
          {"properties",
           {{"path", PathProperty("Folder to list (default \".\", the workspace root).")},
            {"recursive",
             {{"type", "boolean"},
              {"default", false},
              {"description", "Include the contents of subfolders."}}}}},
          {"additionalProperties", false}}},
        {"outputSchema",
         {{"type", "object"},
          {"properties",
           {{"path", {{"type", "string"}, {"description", "The listed folder."}}},
            {"entries",
             {{"type", "array"},
              {"items",
               {{"type", "object"},
                {"properties",
                 {{"path", {{"type", "string"}}},
                  {"type",
                   {{"type", "string"},
                    {"enum",
                     {"file", "directory", "symlink", "fifo", "socket", "device", "other"}}}},
                  {"size", {{"type", "integer"}}},
                  {"mtime", {{"type", "string"}}},
                  {"target",
                   {{"type", "string"},
                    {"description", "Symlinks only: where the link points."}}}}},
                {"required", {"path", "type", "size", "mtime"}},
                {"additionalProperties", false}}}}},
            {"count", {{"type", "integer"}}},
            {"truncated", {{"type", "boolean"}}}}},
          {"required", {"path", "entries", "count", "truncated"}},
          {"additionalProperties", false}}},
        {"annotations", Annotations("List workspace files", {.read_only = true})},
    };
  }

  void Call(ToolCallPtr call) override { call->Finish(Run(call->arguments())); }

 private:
  json Run(const json& arguments) const {
    auto args = Args::Parse(arguments, {"path", "recursive"});
    if (!args.ok()) return ErrorResult(args.status().message());
    auto path = args->OptionalString("path");
    auto recursive = args->OptionalBool("recursive");
    if (!path.ok()) return ErrorResult(path.status().message());
    if (!recursive.ok()) return ErrorResult(recursive.status().message());

    workspace::ListOptions options;
    options.recursive = recursive->value_or(false);
    options.max_entries = kListCap;
    auto listing = ws_->List(path->value_or("."), options);
    if (!listing.ok()) return ErrorResult(listing.status().message());

    json entries = json::array();
    std::string text = std::to_string(listing->entries.size()) + " entries in '" + listing->path +
                       "'" + (options.recursive ? " (recursive)" : "") + "\n";
    for (const auto& e : listing->entries) {
      const std::string mtime = workspace::IsoTimeUtc(e.mtime);
      const std::string_view type = workspace::FileTypeName(e.type);
      json j = {{"path", e.path}, {"type", type}, {"size", e.size}, {"mtime", mtime}};
      text += std::string(type) + "\t" + std::to_string(e.size) + "\t" + mtime + "\t" +
              Printable(e.path);
      if (e.type == workspace::FileType::kDirectory) text += "/";
      if (e.type == workspace::FileType::kSymlink) {
        j["target"] = e.target;
        text += " -> " + Printable(e.target);
      }
      text += "\n";
      entries.push_back(std::move(j));
    }
    if (listing->truncated) {
      text += "[truncated at " + std::to_string(kListCap) +
              " entries; list a subfolder, or without recursive, to see the rest]\n";
    }
    if (listing->skipped_deep > 0) {
      text += "[" + std::to_string(listing->skipped_deep) + " folders nested deeper than " +
              std::to_string(options.max_depth) + " levels not entered; list them directly]\n";
    }
    json structured = {{"path", listing->path},
                       {"entries", std::move(entries)},
                       {"count", listing->entries.size()},
                       {"truncated", listing->truncated}};
    return StructuredResult(std::move(structured), std::move(text));
  }

  std::shared_ptr<Workspace> ws_;
};

}  // namespace

void AddFileTools(mcp::ToolRegistry& registry, std::shared_ptr<workspace::Workspace> ws) {
  registry.Add(std::make_unique<ReadFileTool>(ws));
  registry.Add(std::make_unique<WriteFileTool>(ws));
  registry.Add(std::make_unique<ListFilesTool>(std::move(ws)));
}

}  // namespace mcpx::tools
