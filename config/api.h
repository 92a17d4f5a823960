// REST API routing, independent of the transport: a Beast request in, a
// Beast response out. The server (rest_server.h) only moves bytes; tests
// call `Api::handle` directly as well as over real sockets.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "config/manager.h"
#include "config/metrics.h"

namespace meridian::config {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr size_t kMaxBodyBytes = 1 << 20;

struct Health {
  bool live = true;
  bool ready = false;
  nlohmann::json detail = nlohmann::json::object();  // shown by /healthcheck and /readyz
  /// Ready, but something an operator must see is wrong (a port's link down,
  /// its interface gone): /readyz still answers 200, with status "degraded".
  bool degraded = false;
  std::vector<std::string> degraded_reasons = {};
};

/// What the API reads from the running system (meridiand's data plane).
class StatusProvider {
 public:
  virtual ~StatusProvider() = default;
  virtual nlohmann::json ports() = 0;
  virtual nlohmann::json stats() = 0;
  virtual void metrics(MetricsWriter& out) = 0;
  virtual Health health() = 0;

  /// A module's own resource (e.g. /api/v1/vxlan/fdb): status and JSON body,
  /// or nullopt when the path is not the module's (the API answers 404).
  struct Resource {
    Resource(http::status s, nlohmann::json b, std::string a = "")
        : status(s), body(std::move(b)), allow(std::move(a)) {}
    http::status status = http::status::ok;
    nlohmann::json body;
    std::string allow;  // the methods allowed, for a 405's Allow header

    /// `{"error": reason, "details": [{"path": field, "reason": reason}]}`.
    static Resource error(http::status s, const std::string& field, const std::string& reason) {
      return Resource{s, {{"error", reason}, {"details", {{{"path", field}, {"reason", reason}}}}}};
    }
    /// 405 with the Allow header.
    static Resource not_allowed(const char* allow) {
      const std::string reason = std::string("allowed: ") + allow;
      return Resource{http::status::method_not_allowed,
                      {{"error", "method not allowed"}, {"details", {{{"path", ""}, {"reason", reason}}}}},
                      allow};
    }
  };
  virtual std::optional<Resource> resource(http::verb, const std::string& /*path*/,
                                           const std::map<std::string, std::string>& /*query*/) {
    return std::nullopt;
  }
};

struct ApiOptions {
  /// When non-empty every request over the network but /livez needs
  /// "Authorization: Bearer <token>". The Unix socket is guarded by its file
  /// mode (0660) instead.
  std::string token;
};

/// Where a request came from: the network (TCP) or the local Unix socket.
enum class Origin : uint8_t { kNetwork, kLocalSocket };

class Api {
 public:
  Api(ConfigManager& config, StatusProvider& status, ApiOptions options = {})
      : config_(config), status_(status), options_(std::move(options)) {}

  /// Never throws: internal failures become 500 with a JSON body. The
  /// response echoes (or creates) X-Request-Id, which is also the log trace id.
  /// A HEAD request is answered as its GET, without the body.
  Response handle(const Request& request, Origin origin = Origin::kNetwork);
  /// True when no token is required (none set, or the local socket), or the
  /// request carries it ("Authorization: Bearer <token>", the scheme in any case).
  bool authorized(const Request& request, Origin origin = Origin::kNetwork) const;

 private:
  Response route(const Request& request, const std::string& path, const std::string& query);
  Response config_write(const Request& request, const std::string& query);

  ConfigManager& config_;
  StatusProvider& status_;
  ApiOptions options_;
};

/// `{"error": ..., "details": [...]}` with the given status.
Response error_response(http::status status, const std::string& error,
                        const FieldErrors& details, unsigned version = 11, bool keep_alive = true);

}  // namespace meridian::config
