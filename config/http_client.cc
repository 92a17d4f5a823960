#include "config/http_client.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace meridian::config {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

template <class Stream>
HttpResult exchange(Stream& stream, http::request<http::string_body>& req,
                    std::chrono::seconds timeout) {
  HttpResult out;
  beast::error_code ec;
  stream.expires_after(timeout);
  http::write(stream, req, ec);
  // A server may answer before reading the whole body (413) and stop
  // reading; its reply is still worth reading when the send failed.
  const beast::error_code send_error = ec;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(stream, buffer, parser, ec);
  if (ec) {
    out.error = send_error ? "send: " + send_error.message() : "receive: " + ec.message();
    return out;
  }
  auto& res = parser.get();
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(field.value());
  }
  stream.socket().shutdown(asio::socket_base::shutdown_both, ec);
  return out;
}

}  // namespace

HttpResult http_call(const ApiEndpoint& endpoint, const std::string& method,
                     const std::string& target, const std::string& body,
                     const std::map<std::string, std::string>& headers,
                     std::chrono::seconds timeout) {
  http::request<http::string_body> req;
  req.method(http::string_to_verb(method));
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, endpoint.unix_path.empty() ? endpoint.host : "localhost");
  req.set(http::field::user_agent, "meridianctl");
  req.keep_alive(false);
  if (!endpoint.token.empty()) req.set(http::field::authorization, "Bearer " + endpoint.token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();

  asio::io_context io;
  beast::error_code ec;
  if (!endpoint.unix_path.empty()) {
    if (endpoint.unix_path.size() >= 108) return {0, "", {}, "socket path too long: " + endpoint.unix_path};
    beast::basic_stream<asio::local::stream_protocol> stream(io);
    stream.expires_after(timeout);
    stream.connect(asio::local::stream_protocol::endpoint(endpoint.unix_path), ec);
    if (ec) return {0, "", {}, "connect " + endpoint.unix_path + ": " + ec.message()};
    return exchange(stream, req, timeout);
  }
  beast::tcp_stream stream(io);
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
  if (ec) return {0, "", {}, "resolve " + endpoint.host + ": " + ec.message()};
  stream.expires_after(timeout);
  stream.connect(results, ec);
  if (ec) {
    return {0, "", {}, "connect " + endpoint.host + ":" + std::to_string(endpoint.port) + ": " +
                           ec.message()};
  }
  return exchange(stream, req, timeout);
}

}  // namespace meridian::config
