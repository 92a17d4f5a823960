#include "config/rest_server.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/un.h>

#include <array>
#include <map>
#include <type_traits>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "config/document.h"
#include "config/log.h"

namespace meridian::config {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;

/// Open connections against a limit; only touched on the io_context thread.
struct ConnectionBudget {
  size_t open = 0;
  size_t max = 0;
};

struct RestServer::State {
  State(asio::io_context& i, Api& a, RestServerOptions o) : io(i), api(a), options(o) {}
  asio::io_context& io;
  Api& api;
  RestServerOptions options;
  std::unique_ptr<tcp::acceptor> tcp_acceptor;
  std::unique_ptr<unix_socket::acceptor> unix_acceptor;
  std::string unix_path;
  ConnectionBudget tcp_budget{0, options.max_connections};
  ConnectionBudget unix_local{0, options.max_unix_connections};
  std::map<std::string, size_t> per_source;  // TCP peer address -> open connections
  size_t refusing = 0;                         // refused connections still being answered
  bool stopped = false;
};

namespace {

/// A TCP peer's address (without the port); "" for the Unix socket.
std::string source_of(const tcp::socket& s) {
  beast::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? "?" : ep.address().to_string();
}
std::string source_of(const unix_socket::socket&) { return ""; }

template <class Protocol>
class Session : public std::enable_shared_from_this<Session<Protocol>> {
 public:
  /// A session over a limit is not counted: refusing it must not take a
  /// slot from the peers that are within their share.
  Session(typename Protocol::socket socket, std::shared_ptr<RestServer::State> state, ConnectionBudget& budget)
      : source_(source_of(socket)), stream_(std::move(socket)), state_(std::move(state)), budget_(budget),
        refused_(would_exceed()) {
    if (refused_) {
      answered_ = state_->refusing < state_->options.max_refusing;
      state_->refusing += answered_;
      return;
    }
    ++budget_.open;
    if (!source_.empty()) ++state_->per_source[source_];
  }
  ~Session() {
    if (refused_) {
      state_->refusing -= answered_;
      return;
    }
    --budget_.open;
    if (source_.empty()) return;
    auto it = state_->per_source.find(source_);
    if (it != state_->per_source.end() && --it->second == 0) state_->per_source.erase(it);
  }

  /// Refused at accept: over the listener's budget, or this TCP peer's share of it.
  bool refused() const { return refused_; }
  /// A refused connection that gets a 503 (false: closed without one).
  bool answered() const { return answered_; }

  void start() { read_request(); }

  /// Answers 503 and closes: used when over a connection limit.
  void reject_busy() {
    const bool per_source = budget_.open < budget_.max;
    response_ = error_response(http::status::service_unavailable, "too many connections",
                               {{"", per_source ? "connection limit for this client address reached, retry later"
                                                : "connection limit reached, retry later"}},
                               11, false);
    write_response();
  }

 private:
  bool would_exceed() const {
    if (budget_.open >= budget_.max) return true;
    if (source_.empty()) return false;
    auto it = state_->per_source.find(source_);
    return it != state_->per_source.end() && it->second >= state_->options.max_connections_per_source;
  }

  void read_request() {
    parser_.emplace();
    parser_->body_limit(kMaxBodyBytes);
    parser_->header_limit(16 * 1024);
    // The first request must arrive within the request timeout; later ones
    // (only on connections that have shown the token) may wait the idle timeout.
    stream_.expires_after(first_request_ ? state_->options.request_timeout : state_->options.idle_timeout);
    first_request_ = false;
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return close();
    }
    if (ec == http::error::body_limit) {
      response_ = error_response(http::status::payload_too_large, "request body too large",
                                 {{"", "bodies are limited to " + std::to_string(kMaxBodyBytes) +
                                           " bytes"}},
                                 11, false);
      return write_response();
    }
    if (ec == http::error::header_limit) {
      response_ = error_response(http::status::request_header_fields_too_large,
                                 "request headers too large", {{"", "limit is 16384 bytes"}}, 11, false);
      return write_response();
    }
    if (ec) {
      response_ = error_response(http::status::bad_request, "malformed HTTP request",
                                 {{"", ec.message()}}, 11, false);
      return write_response();
    }
    const Request& request = parser_->get();
    constexpr Origin kOrigin = std::is_same_v<Protocol, unix_socket> ? Origin::kLocalSocket : Origin::kNetwork;
    authenticated_ = authenticated_ || state_->api.authorized(request, kOrigin);
    response_ = state_->api.handle(request, kOrigin);
    // Until a peer has shown the token it gets one request per connection:
    // without the token it cannot hold a slot with keep-alive.
    if (!authenticated_) response_.keep_alive(false);
    write_response();
  }

  void write_response() {
    stream_.expires_after(state_->options.request_timeout);
    http::async_write(stream_, response_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec || !self->response_.keep_alive() || self->state_->stopped) {
                          return self->close();
                        }
                        self->read_request();
                      });
  }

  /// Lingering close: stop sending, then discard what the client still sends
  /// (e.g. the rest of an oversize body) for a moment before closing, so the
  /// kernel does not answer unread data with a RST that destroys our reply.
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(1));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->stream_.close();
                              self->drain();
                            });
  }

  std::string source_;
  beast::basic_stream<Protocol> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
  std::shared_ptr<RestServer::State> state_;
  ConnectionBudget& budget_;
  bool refused_;
  bool answered_ = false;
  bool first_request_ = true;
  bool authenticated_ = false;
  std::array<char, 4096> scratch_;
};

template <class Protocol>
void accept_loop(typename Protocol::acceptor& acceptor, std::shared_ptr<RestServer::State> state,
                 ConnectionBudget& budget) {
  acceptor.async_accept([&acceptor, state, &budget](beast::error_code ec, typename Protocol::socket socket) {
    if (state->stopped || ec == asio::error::operation_aborted) return;
    if (!ec) {
      auto session = std::make_shared<Session<Protocol>>(std::move(socket), state, budget);
      if (session->refused()) {
        if (session->answered()) session->reject_busy();  // else closed as it goes
      } else {
        session->start();
      }
    } else {
      // e.g. EMFILE: retry after a pause instead of spinning on the error.
      log::warn("rest", "accept failed", {{"error", ec.message()}});
      auto timer = std::make_shared<asio::steady_timer>(state->io, std::chrono::milliseconds(100));
      timer->async_wait([&acceptor, state, timer, &budget](beast::error_code) {
        if (!state->stopped) accept_loop<Protocol>(acceptor, state, budget);
      });
      return;
    }
    accept_loop<Protocol>(acceptor, state, budget);
  });
}

}  // namespace

std::string read_token_file(const std::string& path, std::string& token) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  if (st.st_mode & (S_IWGRP | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return path + ": mode " + mode + " lets others read or change the token; chmod 600 (or 640)";
  }
  auto text = read_file(path);
  if (!text) return path + ": " + std::strerror(errno);
  std::string line = text->substr(0, text->find_first_of("\r\n"));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
  if (line.size() < 16) return path + ": the token (first line) must be at least 16 characters";
  for (char c : line) {
    if (c < 0x21 || c > 0x7e) return path + ": the token may hold only visible ASCII characters, no spaces";
  }
  token = std::move(line);
  return "";
}

bool is_loopback_address(const std::string& address) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  return !ec && addr.is_loopback();
}

bool split_host_port(const std::string& text, std::string& host, uint16_t& port) {
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find("]:");
    if (close == std::string::npos) return false;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (host.empty() || port_text.empty() || port_text.size() > 5) return false;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
  }
  unsigned long p = std::stoul(port_text);
  if (p > 65535) return false;
  port = static_cast<uint16_t>(p);
  return true;
}

RestServer::RestServer(asio::io_context& io, Api& api, RestServerOptions options)
    : state_(std::make_shared<State>(io, api, options)) {}

RestServer::~RestServer() { stop(); }

std::string RestServer::listen_unix(const std::string& path) {
  beast::error_code ec;
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return path + ": a Unix socket path must be 1.." + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
           " characters";
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return path + ": exists and is not a socket";
    // Replace only a stale socket: one that nobody answers on.
    unix_socket::socket probe(state_->io);
    probe.connect(unix_socket::endpoint(path), ec);
    if (!ec) return path + ": another process is serving on this socket";
    ec.clear();
    ::unlink(path.c_str());
  }
  auto acceptor = std::make_unique<unix_socket::acceptor>(state_->io);
  acceptor->open(unix_socket(), ec);
  if (!ec) {
    // Create the socket file as 0660 directly: no window with looser modes.
    const mode_t old_mask = ::umask(0117);
    acceptor->bind(unix_socket::endpoint(path), ec);
    ::umask(old_mask);
  }
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "listen on " + path + ": " + ec.message();
  ::chmod(path.c_str(), 0660);
  state_->unix_path = path;
  state_->unix_acceptor = std::move(acceptor);
  accept_loop<unix_socket>(*state_->unix_acceptor, state_, state_->unix_local);
  return "";
}

std::string RestServer::listen_tcp(const std::string& address_port) {
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(address_port, host, port)) {
    return "expected ADDRESS:PORT, got '" + address_port + "'";
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return "bad address '" + host + "': " + ec.message();
  tcp::endpoint endpoint(address, port);
  auto acceptor = std::make_unique<tcp::acceptor>(state_->io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "listen on " + address_port + ": " + ec.message();
  state_->tcp_acceptor = std::move(acceptor);
  accept_loop<tcp>(*state_->tcp_acceptor, state_, state_->tcp_budget);
  return "";
}

uint16_t RestServer::tcp_port() const {
  if (!state_->tcp_acceptor) return 0;
  beast::error_code ec;
  auto ep = state_->tcp_acceptor->local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void RestServer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  beast::error_code ec;
  if (state_->tcp_acceptor) state_->tcp_acceptor->close(ec);
  if (state_->unix_acceptor) {
    state_->unix_acceptor->close(ec);
    ::unlink(state_->unix_path.c_str());
  }
}

}  // namespace meridian::config
