// Boost.Beast HTTP/1.1 server on the control lcore's io_context. Listens on
// a Unix socket and/or a TCP address, with a body cap, idle and request
// timeouts, keep-alive, and connection limits that a remote peer cannot use
// to lock the local administrator out: the Unix socket has its own budget,
// TCP peers are limited per source address, a connection that has not
// authenticated gets a short idle time, and a 401 closes the connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "config/api.h"

namespace meridian::config {

struct RestServerOptions {
  /// A keep-alive connection with no request. When a token is required, a
  /// connection that has not shown it gets one request and is closed.
  std::chrono::seconds idle_timeout{30};
  std::chrono::seconds request_timeout{10};  // to read one request or write one response
  size_t max_connections = 64;        // TCP, all peers together
  size_t max_connections_per_source = 8;  // TCP, one peer address
  size_t max_unix_connections = 64;   // the Unix socket's own budget
  /// 503 replies being written at once to refused connections; past it a
  /// refused connection is closed without one (refusals take no slot, so
  /// this bounds the descriptors a flood of them can hold).
  size_t max_refusing = 256;
};

class RestServer {
 public:
  RestServer(boost::asio::io_context& io, Api& api, RestServerOptions options = {});
  ~RestServer();

  /// Binds a Unix socket (replacing a stale socket file). Returns "" or an error.
  std::string listen_unix(const std::string& path);
  /// Binds "ADDRESS:PORT" (port 0 picks a free port). Returns "" or an error.
  std::string listen_tcp(const std::string& address_port);
  /// The TCP port actually bound, 0 when not listening on TCP.
  uint16_t tcp_port() const;
  /// Stops accepting; open connections finish their current request.
  void stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// Reads the API token: the first line of `path`, trailing whitespace cut.
/// Refused (a message naming why, "" on success): a file that is not
/// regular, is writable by group or others or readable by others (chmod
/// 600 or 640, as ssh insists for keys), or a token that is shorter than 16
/// characters or holds anything but visible ASCII.
std::string read_token_file(const std::string& path, std::string& token);

/// True for 127.0.0.0/8 and ::1.
bool is_loopback_address(const std::string& address);
/// Splits "127.0.0.1:8080" or "[::1]:8080"; false when malformed.
bool split_host_port(const std::string& text, std::string& host, uint16_t& port);

}  // namespace meridian::config
