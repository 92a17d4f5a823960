// Small synchronous HTTP/1.1 client over a Unix socket or TCP, used by
// meridianctl and the tests. One request per connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace meridian::config {

struct ApiEndpoint {
  std::string unix_path;  // used when non-empty
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string token;
};

struct HttpResult {
  int status = 0;            // 0 when the request never got an answer
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;         // transport error, empty when an answer arrived
};

HttpResult http_call(const ApiEndpoint& endpoint, const std::string& method,
                     const std::string& target, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {},
                     std::chrono::seconds timeout = std::chrono::seconds(10));

}  // namespace meridian::config
