#include "mcp/dispatcher.h"

#include <exception>

#include <spdlog/spdlog.h>

namespace mcpx::mcp {
namespace {

RpcError WrongType(std::string_view name, std::string_view want, const json& got) {
  return InvalidParams("params." + std::string(name) + " must be " + std::string(want) + ", got " +
                       TypeName(got));
}

// nlohmann's what() starts with "[json.exception.parse_error.101] "; the rest is for people.
std::string ParseErrorText(const std::exception& e) {
  std::string_view what = e.what();
  if (const size_t p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
  return std::string(what);
}

}  // namespace

const json* ParamReader::Find(std::string_view name) const {
  if (!params_.is_object()) return nullptr;
  auto it = params_.find(name);
  if (it == params_.end() || it->is_null()) return nullptr;
  return &*it;
}

RpcOr<std::string> ParamReader::RequiredString(std::string_view name) const {
  const json* v = Find(name);
  if (v == nullptr) return InvalidParams("missing params." + std::string(name));
  if (!v->is_string()) return WrongType(name, "a string", *v);
  return v->get<std::string>();
}

RpcOr<std::optional<std::string>> ParamReader::OptionalString(std::string_view name) const {
  const json* v = Find(name);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return WrongType(name, "a string", *v);
  return std::optional<std::string>(v->get<std::string>());
}

RpcOr<json> ParamReader::OptionalObject(std::string_view name) const {
  const json* v = Find(name);
  if (v == nullptr) return json::object();
  if (!v->is_object()) return WrongType(name, "an object", *v);
  return *v;
}

void Dispatcher::AddRawRequest(std::string method, Gate gate, Era era, RequestFn fn) {
  requests_[std::move(method)] = Route{gate, era, std::move(fn)};
}

void Dispatcher::AddNotification(std::string method, NotificationFn fn) {
  notifications_[std::move(method)] = std::move(fn);
}

void Dispatcher::Send(const json& message) {
  try {
    sink_.Send(message);
  } catch (const std::exception& e) {
    spdlog::error("cannot send a message: {}", e.what());
  } catch (...) {
    spdlog::error("cannot send a message: unknown exception");
  }
}

void Dispatcher::HandleOversized(size_t limit) {
  Send(MakeError(nullptr, {rpc::kInvalidRequest, "message exceeds " + std::to_string(limit) +
                                                     " bytes; it was discarded"}));
}

void Dispatcher::HandleLine(std::string_view line) {
  try {
    if (NestingDepth(line) > kMaxNesting) {
      Send(MakeError(nullptr, {rpc::kInvalidRequest, "message nests deeper than " +
                                                         std::to_string(kMaxNesting) + " levels"}));
      return;
    }
    json message;
    try {
      message = json::parse(line);
    } catch (const json::parse_error& e) {
      Send(MakeError(nullptr, {rpc::kParseError, "invalid JSON: " + ParseErrorText(e)}));
      return;
    }
    HandleMessage(std::move(message));
  } catch (const std::exception& e) {
    // Handlers have their own catch that knows the id; this is for the envelope code itself.
    spdlog::error("internal error while handling a message: {}", e.what());
    Send(MakeError(nullptr, {rpc::kInternalError, std::string("internal error: ") + e.what()}));
  } catch (...) {
    spdlog::error("internal error while handling a message: unknown exception");
    Send(MakeError(nullptr, {rpc::kInternalError, "internal error: unknown exception"}));
  }
}

void Dispatcher::HandleMessage(json message) {
  if (message.is_array()) {
    Send(MakeError(nullptr, {rpc::kInvalidRequest,
                             "batching is not supported: send one JSON-RPC message per line"}));
    return;
  }
  if (!message.is_object()) {
    Send(MakeError(nullptr, {rpc::kInvalidRequest,
                             "a JSON-RPC message must be an object, got " + TypeName(message)}));
    return;
  }

  const auto id_it = message.find("id");
  const bool has_id = id_it != message.end();
  json id = nullptr;
  if (has_id) {
    if (!id_it->is_string() && !id_it->is_number()) {
      Send(MakeError(nullptr, {rpc::kInvalidRequest,
                               "id must be a string or a number, got " + TypeName(*id_it)}));
      return;
    }
    id = *id_it;
  }
  const auto method_it = message.find("method");
  const bool has_method = method_it != message.end() && method_it->is_string();
  // A well-formed notification is never answered, not even to say it is wrong.
  const bool notification = !has_id && has_method;
  auto reject = [&](int code, std::string text) {
    if (notification) {
      spdlog::debug("ignoring a malformed notification: {}", text);
      return;
    }
    Send(MakeError(id, {code, std::move(text)}));
  };

  if (method_it == message.end() && has_id &&
      (message.contains("result") || message.contains("error"))) {
    spdlog::debug("ignoring a response from the client: this server sends no requests");
    return;
  }
  const auto version = message.find("jsonrpc");
  if (version == message.end() || *version != "2.0") {
    reject(rpc::kInvalidRequest, "jsonrpc must be \"2.0\"");
    return;
  }
  if (method_it == message.end()) {
    reject(rpc::kInvalidRequest, "missing method");
    return;
  }
  if (!has_method) {
    reject(rpc::kInvalidRequest, "method must be a string, got " + TypeName(*method_it));
    return;
  }
  json params = json::object();
  if (auto p = message.find("params"); p != message.end() && !p->is_null()) {
    if (!p->is_object()) {
      reject(rpc::kInvalidParams, "params must be an object, got " + TypeName(*p));
      return;
    }
    params = std::move(*p);
  }
  const std::string& method = method_it->get_ref<const std::string&>();

  if (notification) {
    auto it = notifications_.find(method);
    if (it == notifications_.end()) {
      spdlog::debug("ignoring unknown notification '{}'", method);
      return;
    }
    try {
      it->second(params);
    } catch (const std::exception& e) {
      spdlog::error("notification '{}' failed: {}", method, e.what());
    } catch (...) {
      spdlog::error("notification '{}' failed with an unknown exception", method);
    }
    return;
  }

  auto it = requests_.find(method);
  if (it == requests_.end()) {
    Send(MakeError(
        id, {rpc::kMethodNotFound, "method not found: " + method, json{{"method", method}}}));
    return;
  }
  RpcOr<RequestMeta> meta = Admit(method, it->second.gate, it->second.era, params);
  if (!meta.ok()) {
    Send(MakeError(id, meta.error()));
    return;
  }
  Request request{id, method, std::move(meta).value()};
  Outcome outcome;
  try {
    outcome = it->second.fn(params, request);
  } catch (const std::exception& e) {
    spdlog::error("'{}' failed: {}", method, e.what());
    outcome = RpcError{rpc::kInternalError, "internal error in " + method + ": " + e.what()};
  } catch (...) {
    spdlog::error("'{}' failed with an unknown exception", method);
    outcome = RpcError{rpc::kInternalError, "internal error in " + method};
  }
  Reply(request, std::move(outcome));
}

RpcOr<RequestMeta> Dispatcher::Admit(const std::string& method, Gate gate, Era era,
                                     const json& params) const {
  if (era == Era::kHandshake) return RequestMeta{};
  RpcOr<RequestMeta> meta = ReadRequestMeta(params);
  if (!meta.ok()) return meta;
  if (meta.value().modern) {
    if (era == Era::kLegacyOnly) {
      return RpcError{
          rpc::kMethodNotFound,
          "method not found: " + method + " is not part of protocol " + std::string(kModernVersion),
          json{{"method", method}}};
    }
    return meta;
  }
  if (era == Era::kModernOnly) {
    return InvalidParams(method + " needs params._meta[\"" + std::string(meta::kProtocolVersion) +
                         "\"] (\"" + std::string(kModernVersion) + "\") and params._meta[\"" +
                         std::string(meta::kClientCapabilities) + "\"]");
  }
  if (gate == Gate::kAfterInitialize && !initialized_) {
    return RpcError{rpc::kNotInitialized,
                    "server not initialized: send initialize first, or use protocol " +
                        std::string(kModernVersion) + " with per-request _meta"};
  }
  return meta;
}

void Dispatcher::Reply(const Request& request, Outcome outcome) {
  if (auto* result = std::get_if<json>(&outcome)) {
    Send(MakeResult(request.id, request.meta.modern ? ModernResult(std::move(*result), server_info_)
                                                    : std::move(*result)));
  } else if (auto* error = std::get_if<RpcError>(&outcome)) {
    Send(MakeError(request.id, *error));
  }
}

}  // namespace mcpx::mcp
