#include "mcp/server.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "mcp/client_log_sink.h"
#include "mcp/tool_call.h"
#include "mcp/transport.h"
#include "util/event_loop.h"
#include "util/unique_fd.h"

#ifndef MCPX_VERSION
#define MCPX_VERSION "0.0.0"
#endif

namespace mcpx::mcp {
namespace {

constexpr std::string_view kInstructions =
    "Runs Python for you in a sandbox, as a data analyst would use a notebook. Files live in one "
    "workspace: tool paths are relative to it, and code sees it at /workspace (also its working "
    "directory). Python state (variables, imports, loaded data) persists between execute_python "
    "calls of the same session; use reset_session to start over. matplotlib figures come back "
    "as images automatically, so there is no need to save them to see them. numpy, pandas and "
    "matplotlib are available. There is no network access from code.";

// Caching hints (2026-07-28): the tool list and the (empty) template list do not change while the
// process lives; workspace files change under every cell.
constexpr int64_t kStableTtlMs = 60 * 60 * 1000;

// The handshake revisions have no caching hints: a legacy result goes out as it is.
json Cacheable(json result, bool modern, int64_t ttl_ms, std::string_view scope) {
  if (!modern) return result;
  result["ttlMs"] = ttl_ms;
  result["cacheScope"] = scope;
  return result;
}

// Cursors are opaque to clients; the offset inside is ours to change.
constexpr std::string_view kCursorPrefix = "tools:";

std::string EncodeCursor(size_t offset) {
  return std::string(kCursorPrefix) + std::to_string(offset);
}

std::optional<size_t> DecodeCursor(std::string_view cursor, size_t count) {
  if (cursor.substr(0, kCursorPrefix.size()) != kCursorPrefix) return std::nullopt;
  cursor.remove_prefix(kCursorPrefix.size());
  size_t offset = 0;
  auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), offset);
  if (ec != std::errc() || end != cursor.data() + cursor.size()) return std::nullopt;
  if (offset == 0 || offset >= count) return std::nullopt;
  return offset;
}

// 2026-07-28 moved "resource not found" from -32002 to -32602.
RpcError FromStatus(const Status& st, bool modern) {
  switch (st.code()) {
    case Code::kNotFound:
      return {modern ? rpc::kInvalidParams : rpc::kResourceNotFound,
              "resource not found: " + st.ToString()};
    case Code::kInvalidArgument:
    case Code::kPermissionDenied:
    case Code::kResourceExhausted:  // e.g. a file over the resources/read cap: the request's fault
      return {rpc::kInvalidParams, st.ToString()};
    default:
      return {rpc::kInternalError, st.ToString()};
  }
}

// Typed params, one per method that takes any.
struct InitializeParams {
  std::string protocol_version;
  json client_info;
};
struct CursorParams {
  std::optional<std::string> cursor;
};
struct UriParams {
  std::string uri;
};
struct SetLevelParams {
  LogLevel level;
};
struct NoParams {};

RpcOr<NoParams> ParseNone(const json&) { return NoParams{}; }

RpcOr<InitializeParams> ParseInitialize(const json& params) {
  ParamReader r(params);
  auto version = r.RequiredString("protocolVersion");
  if (!version.ok()) return version.error();
  auto caps = r.OptionalObject("capabilities");
  if (!caps.ok()) return caps.error();
  auto info = r.OptionalObject("clientInfo");
  if (!info.ok()) return info.error();
  return InitializeParams{std::move(version).value(), std::move(info).value()};
}

RpcOr<CursorParams> ParseCursor(const json& params) {
  auto cursor = ParamReader(params).OptionalString("cursor");
  if (!cursor.ok()) return cursor.error();
  return CursorParams{std::move(cursor).value()};
}

RpcOr<Server::CallRequest> ParseCall(const json& params) {
  ParamReader r(params);
  auto name = r.RequiredString("name");
  if (!name.ok()) return name.error();
  auto arguments = r.OptionalObject("arguments");
  if (!arguments.ok()) return arguments.error();
  auto meta = r.OptionalObject("_meta");
  if (!meta.ok()) return meta.error();
  json token = nullptr;
  if (auto t = meta.value().find("progressToken"); t != meta.value().end() && !t->is_null()) {
    if (!t->is_string() && !t->is_number_integer()) {
      return InvalidParams("params._meta.progressToken must be a string or an integer, got " +
                           TypeName(*t));
    }
    token = *t;
  }
  std::optional<json> task;
  if (auto t = params.find("task"); t != params.end() && !t->is_null()) {
    if (!t->is_object()) return InvalidParams("params.task must be an object, got " + TypeName(*t));
    if (auto ttl = t->find("ttl"); ttl != t->end() && !ttl->is_null() && !ttl->is_number()) {
      return InvalidParams("params.task.ttl must be a number of milliseconds, got " +
                           TypeName(*ttl));
    }
    task = *t;
  }
  return Server::CallRequest{std::move(name).value(), std::move(arguments).value(),
                             std::move(token), std::move(task)};
}

RpcOr<UriParams> ParseUri(const json& params) {
  auto uri = ParamReader(params).RequiredString("uri");
  if (!uri.ok()) return uri.error();
  return UriParams{std::move(uri).value()};
}

RpcOr<SetLevelParams> ParseSetLevel(const json& params) {
  auto name = ParamReader(params).RequiredString("level");
  if (!name.ok()) return name.error();
  auto level = ParseLogLevel(name.value());
  if (!level) {
    return InvalidParams("params.level must be one of " + LogLevelChoices() + "; got '" +
                         name.value() + "'");
  }
  return SetLevelParams{*level};
}

}  // namespace

std::string_view ServerVersion() { return MCPX_VERSION; }

Server::Server(MessageSink& sink, const ToolRegistry& registry, ServerOptions options)
    : connection_(std::make_shared<Connection>(sink)),
      dispatcher_(sink),
      registry_(registry),
      options_(std::move(options)),
      server_info_{{"name", "mcp-executor"},
                   {"title", "Sandboxed Python executor"},
                   {"version", ServerVersion()}},
      tasks_(std::make_shared<TaskStore>(connection_)) {
  if (options_.instructions.empty()) options_.instructions = std::string(kInstructions);
  // Every 2026-07-28 result names the server in its _meta: name and version are enough there.
  dispatcher_.set_server_info(
      json{{"name", server_info_["name"]}, {"version", server_info_["version"]}});
  RegisterMethods();
  RegisterTaskMethods();
}

Server::~Server() {
  // Tool calls still running may finish later; they must not write to a sink that is gone.
  connection_->Detach();
}

void Server::RegisterMethods() {
  auto& d = dispatcher_;
  d.AddRequest<InitializeParams>("initialize", Gate::kAnyTime, Era::kHandshake, ParseInitialize,
                                 [this](InitializeParams p, const Request&) {
                                   return Initialize(p.protocol_version, p.client_info);
                                 });
  d.AddRequest<NoParams>("server/discover", Gate::kAnyTime, Era::kModernOnly, ParseNone,
                         [this](NoParams, const Request&) { return Discover(); });
  d.AddRequest<NoParams>("ping", Gate::kAnyTime, Era::kLegacyOnly, ParseNone,
                         [](NoParams, const Request&) -> Outcome { return json::object(); });
  d.AddRequest<SetLevelParams>("logging/setLevel", Gate::kAfterInitialize, Era::kLegacyOnly,
                               ParseSetLevel, [this](SetLevelParams p, const Request&) -> Outcome {
                                 connection_->set_log_level(p.level);
                                 return json::object();
                               });
  d.AddRequest<CursorParams>(
      "tools/list", Gate::kAfterInitialize, Era::kBoth, ParseCursor,
      [this](CursorParams p, const Request& request) { return ListTools(p.cursor, request); });
  d.AddRequest<CallRequest>(
      "tools/call", Gate::kAfterInitialize, Era::kBoth, ParseCall,
      [this](CallRequest p, const Request& request) { return CallTool(std::move(p), request); });
  d.AddRequest<CursorParams>(
      "resources/list", Gate::kAfterInitialize, Era::kBoth, ParseCursor,
      [this](CursorParams p, const Request& request) { return ListResources(p.cursor, request); });
  d.AddRequest<UriParams>(
      "resources/read", Gate::kAfterInitialize, Era::kBoth, ParseUri,
      [this](UriParams p, const Request& request) { return ReadResource(p.uri, request); });
  d.AddRequest<CursorParams>("resources/templates/list", Gate::kAfterInitialize, Era::kBoth,
                             ParseCursor, [](CursorParams, const Request& request) -> Outcome {
                               json result{{"resourceTemplates", json::array()}};
                               return Cacheable(std::move(result), request.meta.modern,
                                                kStableTtlMs, "public");
                             });

  d.AddNotification("notifications/initialized",
                    [](const json&) { spdlog::debug("client reports initialized"); });
  d.AddNotification("notifications/cancelled", [this](const json& p) { CancelCall(p); });
}

Outcome Server::Initialize(const std::string& version, const json& client_info) {
  if (dispatcher_.initialized()) {
    return RpcError{rpc::kInvalidRequest, "already initialized: send initialize once"};
  }
  // The client's revision if we speak it, else our latest and the client decides.
  std::string chosen(kLegacyVersions[0]);
  for (std::string_view v : kLegacyVersions) {
    if (v == version) chosen = version;
  }
  legacy_version_ = chosen;
  dispatcher_.set_initialized();
  spdlog::info("client {} {} asked for protocol {}, using {}",
               client_info.value("name", std::string("?")),
               client_info.value("version", std::string("?")), version, chosen);
  return json{
      {"protocolVersion", chosen},
      {"capabilities", Capabilities(false)},
      {"serverInfo", server_info_},
      {"instructions", options_.instructions},
  };
}

json Server::Capabilities(bool modern) const {
  json caps{{"tools", {{"listChanged", false}}},
            {"logging", json::object()},
            {"resources", {{"subscribe", false}, {"listChanged", false}}}};
  if (modern) {
    // subscribe is gone from 2026-07-28 (subscriptions/listen replaces it; not offered here).
    caps["resources"] = {{"listChanged", false}};
    caps["extensions"] = {{std::string(meta::kTasksExtension), json::object()}};
  } else if (legacy_tasks()) {
    // No tasks/list: stdio has no auth context to keep one caller's tasks from another.
    caps["tasks"] = {{"cancel", json::object()},
                     {"requests", {{"tools", {{"call", json::object()}}}}}};
  }
  return caps;
}

Outcome Server::Discover() const {
  return Cacheable(json{{"supportedVersions", SupportedVersions()},
                        {"capabilities", Capabilities(true)},
                        {"instructions", options_.instructions}},
                   /*modern=*/true, kStableTtlMs, "public");
}

Outcome Server::ListTools(const std::optional<std::string>& cursor, const Request& request) {
  const auto& tools = registry_.tools();
  size_t start = 0;
  if (cursor) {
    auto offset = DecodeCursor(*cursor, tools.size());
    if (!offset) {
      return InvalidParams("invalid params.cursor '" + *cursor +
                           "': pass the nextCursor of an earlier tools/list");
    }
    start = *offset;
  }
  const size_t page = options_.tools_page_size == 0 ? tools.size() : options_.tools_page_size;
  const size_t end = std::min(tools.size(), start + page);
  json list = json::array();
  for (size_t i = start; i < end; ++i) {
    json def = tools[i]->Definition();
    if (!request.meta.modern && legacy_tasks() && tools[i]->supports_tasks()) {
      def["execution"] = {{"taskSupport", "optional"}};
    }
    list.push_back(std::move(def));
  }
  json result{{"tools", std::move(list)}};
  if (end < tools.size()) result["nextCursor"] = EncodeCursor(end);
  return Cacheable(std::move(result), request.meta.modern, kStableTtlMs, "public");
}

Outcome Server::CallTool(CallRequest p, const Request& request) {
  Tool* tool = registry_.Find(p.name);
  if (tool == nullptr) {
    return RpcError{rpc::kInvalidParams, "unknown tool '" + p.name + "'",
                    json{{"availableTools", registry_.names()}}};
  }
  const RequestMeta& meta = request.meta;
  CallContext context{.progress_token = std::move(p.progress_token),
                      .modern = meta.modern,
                      .log_level = meta.log_level,
                      .server_info = meta.modern ? dispatcher_.server_info() : json(),
                      .may_become_task = meta.modern && meta.tasks_extension() &&
                                         tool->supports_tasks() && timers_ != nullptr};
  const bool wants_keepalive = !context.progress_token.is_null();
  // A 2025-11-25 task: answered at once with the handle, the call runs on behind it. (Clients
  // of older revisions never heard of tasks: their params.task is ignored, as the spec says.)
  if (p.task && !meta.modern && legacy_tasks()) {
    if (!tool->supports_tasks()) {
      return RpcError{rpc::kMethodNotFound,
                      "tool '" + p.name +
                          "' does not run as a task (execution.taskSupport is "
                          "forbidden); call it without params.task",
                      json{{"method", request.method}}};
    }
    return StartLegacyTask(*tool, std::move(p), std::move(context), request);
  }
  const std::string key = Serialize(request.id);
  auto& in_flight = connection_->in_flight();
  if (auto it = in_flight.find(key); it != in_flight.end() && !it->second.expired()) {
    return RpcError{rpc::kInvalidRequest,
                    "id " + key + " is already used by a tools/call still running"};
  }
  const bool may_become_task = context.may_become_task;
  auto call = std::make_shared<ToolCallImpl>(connection_, request.id, p.name,
                                             std::move(p.arguments), std::move(context));
  in_flight[key] = call;
  RunTool(*tool, call);
  if (may_become_task && !call->finished()) PromoteLater(call, p.name);
  if (wants_keepalive && !call->finished()) ArmKeepalive();
  return Deferred{};
}

void Server::RunTool(Tool& tool, const std::shared_ptr<ToolCallImpl>& call) {
  const std::string name = tool.name();
  try {
    tool.Call(call);
  } catch (const std::exception& e) {
    spdlog::error("tool '{}' threw: {}", name, e.what());
    call->Finish(ErrorResult("internal error in tool '" + name + "': " + e.what()));
  } catch (...) {
    spdlog::error("tool '{}' threw an unknown exception", name);
    call->Finish(ErrorResult("internal error in tool '" + name + "'"));
  }
}

Outcome Server::ListResources(const std::optional<std::string>& cursor, const Request& request) {
  const bool modern = request.meta.modern;
  Result<json> r = json{{"resources", json::array()}};
  if (resources_ != nullptr) {
    r = resources_->List(cursor);
  } else if (cursor) {
    return InvalidParams("invalid params.cursor: there are no resources");
  }
  if (!r.ok()) return FromStatus(r.status(), modern);
  return Cacheable(std::move(r).value(), modern, 0, "private");
}

Outcome Server::ReadResource(const std::string& uri, const Request& request) {
  const bool modern = request.meta.modern;
  Result<json> r =
      resources_ != nullptr ? resources_->Read(uri) : Result<json>(Status(Code::kNotFound, uri));
  if (!r.ok()) {
    RpcError e = FromStatus(r.status(), modern);
    if (r.status().code() == Code::kNotFound) e.data = json{{"uri", uri}};
    return e;
  }
  return Cacheable(std::move(r).value(), modern, 0, "private");
}

void Server::CancelCall(const json& params) {
  auto id = params.find("requestId");
  if (id == params.end() || (!id->is_string() && !id->is_number())) return;
  auto& in_flight = connection_->in_flight();
  auto it = in_flight.find(Serialize(*id));
  if (it == in_flight.end()) return;  // finished already, or never ours: nothing to do
  std::shared_ptr<ToolCallImpl> call = it->second.lock();
  if (call == nullptr) {
    in_flight.erase(it);
    return;
  }
  std::string reason;
  if (auto r = params.find("reason"); r != params.end() && r->is_string()) reason = *r;
  call->Cancel(reason);
}

size_t Server::calls_in_flight() const {
  size_t n = 0;
  for (const auto& [key, call] : connection_->in_flight()) {
    if (!call.expired()) ++n;
  }
  return n;
}

void Server::Log(LogLevel level, std::string message) {
  // Only a legacy client that initialized listens to the server as a whole.
  if (!dispatcher_.initialized()) return;
  connection_->Log(level, "mcp-executor", std::move(message));
}

void Server::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto it = shutdown_hooks_.rbegin(); it != shutdown_hooks_.rend(); ++it) {
    try {
      (*it)();
    } catch (const std::exception& e) {
      spdlog::error("shutdown hook failed: {}", e.what());
    } catch (...) {
      spdlog::error("shutdown hook failed with an unknown exception");
    }
  }
}

int Server::Run(EventLoop& loop, StdioTransport& transport) {
  // A client that went away must turn writes into EPIPE, not kill us.
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigset_t old_mask;
  // Blocked so that they arrive through the signalfd, in the loop, not as async handlers.
  if (sigprocmask(SIG_BLOCK, &stop_signals, &old_mask) != 0) {
    spdlog::error("cannot block SIGTERM/SIGINT: {}", ErrnoName(errno));
    return 1;
  }
  UniqueFd sfd(signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) {
    spdlog::error("signalfd: {}", ErrnoName(errno));
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    return 1;
  }
  Status st = loop.Add(sfd.get(), EPOLLIN, [&](uint32_t) {
    signalfd_siginfo info{};
    while (read(sfd.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      spdlog::info("received {}, shutting down", strsignal(static_cast<int>(info.ssi_signo)));
      loop.Stop();
    }
  });
  if (st.ok()) {
    st = transport.Start({
        .on_message = [this](std::string_view line) { HandleLine(line); },
        .on_oversized = [this](size_t limit) { HandleOversized(limit); },
        .on_closed =
            [&loop] {
              spdlog::info("client closed the connection, shutting down");
              loop.Stop();
            },
    });
  }
  if (!st.ok()) {
    spdlog::error("cannot serve on stdio: {}", st.ToString());
    loop.Remove(sfd.get());
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    return 1;
  }

  auto client_sink = std::make_shared<ClientLogSink>(
      [this](LogLevel level, std::string text) { Log(level, std::move(text)); });
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(client_sink);

  loop.Run();

  transport.StopReading();
  loop.Remove(sfd.get());
  Shutdown();
  auto& sinks = logger->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), client_sink), sinks.end());
  // Results the hooks produced (calls ended by the shutdown) still go out, if anyone reads.
  transport.Flush(std::chrono::seconds(2));
  // A second SIGTERM that came during the hooks must not kill us with a signal status once the
  // mask is restored: we are exiting cleanly anyway.
  signalfd_siginfo drained{};
  while (read(sfd.get(), &drained, sizeof(drained)) == static_cast<ssize_t>(sizeof(drained))) {
  }
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  return 0;
}

}  // namespace mcpx::mcp
