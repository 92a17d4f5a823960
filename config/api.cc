#include "config/api.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "config/document.h"
#include "config/json_reader.h"
#include "config/log.h"

namespace meridian::config {
namespace {

Response json_response(http::status status, const nlohmann::json& body, const Request& req) {
  Response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = to_text(body) + "\n";
  res.prepare_payload();
  return res;
}

std::map<std::string, std::string> parse_query(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    std::string pair = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = pair.find('=');
    if (!pair.empty()) {
      out[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

Response method_not_allowed(const Request& req, const char* allow) {
  Response res = error_response(http::status::method_not_allowed, "method not allowed",
                                {{"", std::string(req.method_string()) + " is not supported here; allowed: " + allow}},
                                req.version(), req.keep_alive());
  res.set(http::field::allow, allow);
  return res;
}

}  // namespace

Response error_response(http::status status, const std::string& error, const FieldErrors& details,
                        unsigned version, bool keep_alive) {
  Response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = to_text(nlohmann::json{{"error", error}, {"details", to_json(details)}}) + "\n";
  res.prepare_payload();
  return res;
}

bool Api::authorized(const Request& req, Origin origin) const {
  if (options_.token.empty() || origin == Origin::kLocalSocket) return true;
  const auto auth = req[http::field::authorization];
  // "Bearer" is case-insensitive (RFC 9110 11.1), then one or more spaces.
  constexpr std::string_view kScheme = "bearer";
  if (auth.size() <= kScheme.size() || auth[kScheme.size()] != ' ') return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(auth[i])) != kScheme[i]) return false;
  }
  std::string_view given(auth.data() + kScheme.size(), auth.size() - kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  const std::string& expected = options_.token;
  // Compare in constant time: no early exit that leaks how much matched.
  unsigned char diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

Response Api::handle(const Request& req, Origin origin) {
  std::string request_id;
  if (auto it = req.find("X-Request-Id"); it != req.end() && !it->value().empty() &&
                                          it->value().size() <= 128) {
    request_id = std::string(it->value());
  } else {
    request_id = log::new_trace_id();
  }
  log::TraceScope trace(request_id);

  const std::string target(req.target());
  const auto qmark = target.find('?');
  const std::string path = target.substr(0, qmark);
  const std::string query = qmark == std::string::npos ? "" : target.substr(qmark + 1);

  Response res;
  try {
    if (path != "/livez" && !authorized(req, origin)) {
      res = error_response(http::status::unauthorized, "authentication required",
                           {{"", "send Authorization: Bearer <token>"}}, req.version(), false);
      res.set(http::field::www_authenticate, "Bearer");
    } else {
      res = route(req, path, query);
    }
  } catch (const std::exception& e) {
    log::error("rest", "request failed", {{"path", path}, {"exception", e.what()}});
    res = error_response(http::status::internal_server_error, "internal error",
                         {{"", e.what()}}, req.version(), req.keep_alive());
  }
  if (req.method() == http::verb::head) {
    // RFC 9110 9.3.2: the GET's headers (Content-Length included), no body.
    res.body().clear();
  }
  res.set("X-Request-Id", request_id);
  log::write(res.result_int() >= 500 ? log::Level::kError : log::Level::kInfo, "rest", "request",
             {{"method", std::string(req.method_string())},
              {"path", path},
              {"status", res.result_int()}});
  return res;
}

Response Api::route(const Request& req, const std::string& path, const std::string& query) {
  // HEAD is answered as GET; handle() drops the body.
  const auto method = req.method() == http::verb::head ? http::verb::get : req.method();
  if (path == "/api/v1/config") {
    if (method == http::verb::get) {
      Response res = json_response(http::status::ok, config_.document(), req);
      res.set(http::field::etag, "\"" + std::to_string(config_.generation()) + "\"");
      return res;
    }
    if (method == http::verb::put || method == http::verb::patch) return config_write(req, query);
    return method_not_allowed(req, "GET, HEAD, PUT, PATCH");
  }

  if (method != http::verb::get) {
    static const std::map<std::string, bool> kKnown = {
        {"/api/v1/ports", true}, {"/api/v1/stats", true}, {"/metrics", true},
        {"/livez", true},        {"/readyz", true},       {"/healthcheck", true}};
    if (kKnown.count(path)) return method_not_allowed(req, "GET, HEAD");
  }
  if (path == "/api/v1/ports") return json_response(http::status::ok, status_.ports(), req);
  if (path == "/api/v1/stats") {
    nlohmann::json body = status_.stats();
    body["generation"] = config_.generation();
    return json_response(http::status::ok, body, req);
  }
  if (path == "/metrics") {
    MetricsWriter writer;
    status_.metrics(writer);
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.keep_alive(req.keep_alive());
    res.body() = writer.text();
    res.prepare_payload();
    return res;
  }
  if (path == "/livez") {
    return json_response(http::status::ok, {{"status", "alive"}}, req);
  }
  if (path == "/readyz" || path == "/healthcheck") {
    Health h = status_.health();
    nlohmann::json body = {{"status", !h.ready ? "not ready" : h.degraded ? "degraded" : "ready"},
                           {"ready", h.ready},
                           {"degraded", h.degraded},
                           {"generation", config_.generation()}};
    if (h.degraded) body["degraded_reasons"] = h.degraded_reasons;
    if (path == "/healthcheck" || !h.ready || h.degraded) body["checks"] = h.detail;
    return json_response(h.ready ? http::status::ok : http::status::service_unavailable, body, req);
  }
  if (auto r = status_.resource(method, path, parse_query(query))) {
    Response res = json_response(r->status, r->body, req);
    if (r->status == http::status::method_not_allowed) res.set(http::field::allow, r->allow);
    return res;
  }
  return error_response(http::status::not_found, "not found", {{"", "no resource at " + path}},
                        req.version(), req.keep_alive());
}

Response Api::config_write(const Request& req, const std::string& query) {
  auto params = parse_query(query);
  bool dry_run = false;
  if (auto it = params.find("dry_run"); it != params.end()) {
    if (it->second == "true" || it->second == "1" || it->second.empty()) dry_run = true;
    else if (it->second == "false" || it->second == "0") dry_run = false;
    else return error_response(http::status::bad_request, "bad query parameter",
                               {{"", "query parameter dry_run: expected true or false"}}, req.version(), req.keep_alive());
  }
  for (const auto& [key, _] : params) {
    if (key != "dry_run") {
      return error_response(http::status::bad_request, "bad query parameter",
                            {{"", "unknown query parameter '" + key + "'"}}, req.version(), req.keep_alive());
    }
  }

  std::optional<uint64_t> if_match;
  if (auto it = req.find(http::field::if_match); it != req.end()) {
    bool valid = true;
    if_match = parse_if_match(std::string(it->value()), valid);
    if (!valid) {
      return error_response(http::status::bad_request, "bad If-Match header",
                            {{"", "expected a generation number as an ETag, e.g. \"3\""}},
                            req.version(), req.keep_alive());
    }
  }

  auto content_type = std::string(req[http::field::content_type]);
  content_type = content_type.substr(0, content_type.find(';'));
  std::transform(content_type.begin(), content_type.end(), content_type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  while (!content_type.empty() && content_type.back() == ' ') content_type.pop_back();
  const bool patch = req.method() == http::verb::patch;
  const bool type_ok = content_type.empty() || content_type == "application/json" ||
                       (patch && content_type == "application/merge-patch+json");
  if (!type_ok) {
    return error_response(http::status::unsupported_media_type, "unsupported content type",
                          {{"", std::string("send Content-Type: ") +
                                    (patch ? "application/merge-patch+json or application/json"
                                           : "application/json")}},
                          req.version(), req.keep_alive());
  }

  std::string parse_error, error_path;
  auto body = parse_json_text(req.body(), parse_error, &error_path);
  if (!body) {
    return error_response(http::status::bad_request, "malformed JSON", {{error_path, parse_error}},
                          req.version(), req.keep_alive());
  }
  if (patch && !body->is_object()) {
    return error_response(http::status::bad_request, "merge patch must be a JSON object",
                          {{"", expected("object", *body)}}, req.version(), req.keep_alive());
  }

  ApplyOutcome outcome = patch ? config_.merge_patch(*body, dry_run, if_match)
                               : config_.replace(*body, dry_run, if_match);
  if (outcome.error.empty() && !dry_run && outcome.changed) {
    log::info("config", "applied", {{"generation", outcome.generation}, {"diff", outcome.diff}});
  } else if (!outcome.error.empty()) {
    log::warn("config", "rejected: " + outcome.error,
              {{"details", to_json(outcome.details)}, {"generation", outcome.generation}});
  }
  Response res = json_response(static_cast<http::status>(outcome.http_status), outcome.to_json(), req);
  res.set(http::field::etag, "\"" + std::to_string(config_.generation()) + "\"");
  return res;
}

}  // namespace meridian::config
