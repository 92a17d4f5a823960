// The Beast server over real sockets: Unix and TCP, keep-alive, body cap,
// concurrent clients, idle timeout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "config/http_client.h"
#include "config/rest_server.h"

using namespace meridian::config;
using nlohmann::json;
namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

struct FakeStatus : StatusProvider {
  json ports() override { return {{"ports", json::array()}}; }
  json stats() override { return {{"ports", json::array()}}; }
  void metrics(MetricsWriter&) override {}
  Health health() override { return {true, true, json::object()}; }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_path_ = "/tmp/meridian-rest-" + std::to_string(getpid()) + ".sock";
    RestServerOptions opts;
    opts.idle_timeout = std::chrono::seconds(1);
    opts.request_timeout = std::chrono::seconds(1);
    server_ = std::make_unique<RestServer>(io_, api_, opts);
    ASSERT_EQ(server_->listen_unix(socket_path_), "");
    ASSERT_EQ(server_->listen_tcp("127.0.0.1:0"), "");
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_->stop(); });
    io_.stop();
    thread_.join();
  }
  ApiEndpoint tcp() const { return {"", "127.0.0.1", server_->tcp_port(), ""}; }
  ApiEndpoint unix_ep() const { return {socket_path_, "", 0, ""}; }

  asio::io_context io_;
  ConfigManager manager_{*parse_config(json::object()).config, "", 1};
  FakeStatus status_;
  Api api_{manager_, status_};
  std::unique_ptr<RestServer> server_;
  std::thread thread_;
  std::string socket_path_;
};

TEST_F(ServerTest, ServesOverUnixSocketAndTcp) {
  auto a = http_call(unix_ep(), "GET", "/livez");
  EXPECT_EQ(a.status, 200) << a.error;
  auto b = http_call(tcp(), "GET", "/api/v1/config");
  EXPECT_EQ(b.status, 200) << b.error;
  EXPECT_EQ(b.headers["etag"], "\"1\"");
}

TEST_F(ServerTest, OversizeBodyIs413WithJson) {
  std::string big = "{\"x\": \"" + std::string(kMaxBodyBytes + 10, 'a') + "\"}";
  auto r = http_call(tcp(), "PUT", "/api/v1/config", big);
  EXPECT_EQ(r.status, 413) << r.error;
  EXPECT_EQ(json::parse(r.body)["error"], "request body too large");
  EXPECT_EQ(manager_.generation(), 1u);
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()));
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> req{http::verb::get, "/livez", 11};
    req.set(http::field::host, "x");
    req.keep_alive(true);
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST_F(ServerTest, IdleConnectionIsClosedAfterTimeout) {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()));
  char byte;
  beast::error_code ec;
  const auto start = std::chrono::steady_clock::now();
  sock.read_some(asio::buffer(&byte, 1), ec);  // server closes: EOF
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ServerTest, GarbageRequestIs400) {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()));
  asio::write(sock, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  std::string reply;
  beast::error_code ec;
  char buf[512];
  size_t n;
  while ((n = sock.read_some(asio::buffer(buf), ec)) > 0 && !ec) reply.append(buf, n);
  EXPECT_NE(reply.find("400"), std::string::npos) << reply;
}

TEST_F(ServerTest, ConcurrentClients) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      for (int k = 0; k < 10; ++k) {
        auto r = http_call(i % 2 ? tcp() : unix_ep(), "GET", "/api/v1/stats");
        if (r.status == 200) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 80);
}

// ---- limits a remote peer must not be able to use against the local admin ----

class LimitsTest : public ::testing::Test {
 protected:
  void start(RestServerOptions opts, std::string token = "") {
    api_ = std::make_unique<Api>(manager_, status_, ApiOptions{std::move(token)});
    socket_path_ = "/tmp/meridian-limits-" + std::to_string(getpid()) + ".sock";
    server_ = std::make_unique<RestServer>(io_, *api_, opts);
    ASSERT_EQ(server_->listen_unix(socket_path_), "");
    ASSERT_EQ(server_->listen_tcp("127.0.0.1:0"), "");
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_->stop(); });
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  /// An open TCP connection that has sent nothing.
  std::unique_ptr<asio::ip::tcp::socket> hold() {
    auto s = std::make_unique<asio::ip::tcp::socket>(client_io_);
    s->connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()));
    return s;
  }
  /// `n` such connections.
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> hold(int n) {
    std::vector<std::unique_ptr<asio::ip::tcp::socket>> out;
    for (int i = 0; i < n; ++i) out.push_back(hold());
    return out;
  }
  /// Sends one request on `s` and reads the answer; false when the server closed.
  bool request(asio::ip::tcp::socket& s, const std::string& auth, int& status) {
    http::request<http::string_body> req{http::verb::get, "/api/v1/stats", 11};
    req.set(http::field::host, "x");
    if (!auth.empty()) req.set(http::field::authorization, auth);
    req.keep_alive(true);
    beast::error_code ec;
    http::write(s, req, ec);
    if (ec) return false;
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res, ec);
    if (ec) return false;
    status = res.result_int();
    return true;
  }
  static bool closed_within(asio::ip::tcp::socket& s, std::chrono::milliseconds limit) {
    s.non_blocking(true);
    const auto end = std::chrono::steady_clock::now() + limit;
    char byte;
    while (std::chrono::steady_clock::now() < end) {
      beast::error_code ec;
      s.read_some(asio::buffer(&byte, 1), ec);
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    s.non_blocking(false);
    return false;
  }
  ApiEndpoint unix_ep() const { return {socket_path_, "", 0, "0123456789abcdef"}; }
  ApiEndpoint tcp() const { return {"", "127.0.0.1", server_->tcp_port(), ""}; }

  asio::io_context io_, client_io_;
  ConfigManager manager_{*parse_config(json::object()).config, "", 1};
  FakeStatus status_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<RestServer> server_;
  std::thread thread_;
  std::string socket_path_;
};

TEST_F(LimitsTest, ATcpPeerGetsItsShareAndTheUnixSocketKeepsItsOwnBudget) {
  RestServerOptions opts;
  opts.max_connections_per_source = 3;
  start(opts);
  auto held = hold(3);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto over = http_call(tcp(), "GET", "/livez");
  EXPECT_EQ(over.status, 503);
  EXPECT_NE(over.body.find("for this client address"), std::string::npos) << over.body;
  EXPECT_EQ(http_call(unix_ep(), "GET", "/api/v1/stats").status, 200);
  held.pop_back();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(http_call(tcp(), "GET", "/livez").status, 200);
}

TEST_F(LimitsTest, AFullTcpListenerLeavesTheUnixSocketAlone) {
  RestServerOptions opts;
  opts.max_connections = 4;
  opts.max_connections_per_source = 100;
  start(opts);
  auto held = hold(4);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(http_call(tcp(), "GET", "/livez").status, 503);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(http_call(unix_ep(), "GET", "/api/v1/stats").status, 200);
}

TEST_F(LimitsTest, RefusedConnectionsTakeNoSlot) {
  RestServerOptions opts;
  opts.max_connections = 4;
  opts.max_connections_per_source = 100;
  start(opts);
  auto held = hold(4);
  auto refused = hold(8);  // refused peers that keep their sockets open and never read the 503
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  held.pop_back();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(http_call(tcp(), "GET", "/livez").status, 200);
}

TEST_F(LimitsTest, RefusalsBeingAnsweredAreBoundedToo) {
  RestServerOptions opts;
  opts.max_connections = 1;
  opts.max_connections_per_source = 100;
  opts.max_refusing = 2;
  start(opts);
  auto held = hold();
  auto refused = hold(5);  // none of them reads yet
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int answered = 0;
  for (auto& s : refused) {
    std::string got;
    beast::error_code ec;
    std::array<char, 512> buf;
    while (!ec) got.append(buf.data(), s->read_some(asio::buffer(buf), ec));
    answered += got.find(" 503 ") != std::string::npos;
  }
  EXPECT_EQ(answered, 2);
}

TEST_F(LimitsTest, A401ClosesTheConnectionAndUnauthenticatedPeersGetOneRequest) {
  RestServerOptions opts;
  opts.idle_timeout = std::chrono::seconds(30);
  start(opts, "0123456789abcdef");
  int status = 0;
  auto refused = hold();
  ASSERT_TRUE(request(*refused, "", status));
  EXPECT_EQ(status, 401);
  EXPECT_TRUE(closed_within(*refused, std::chrono::milliseconds(1500)));

  auto unauthenticated = hold();  // /livez needs no token, but earns no keep-alive
  http::request<http::string_body> livez{http::verb::get, "/livez", 11};
  livez.set(http::field::host, "x");
  http::write(*unauthenticated, livez);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(*unauthenticated, buf, res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(closed_within(*unauthenticated, std::chrono::milliseconds(1500)));

  auto admin = hold();
  ASSERT_TRUE(request(*admin, "Bearer 0123456789abcdef", status));
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(closed_within(*admin, std::chrono::milliseconds(2500)));
  ASSERT_TRUE(request(*admin, "bearer 0123456789abcdef", status));
  EXPECT_EQ(status, 200);
}

TEST(ServerSocket, RefusesToStealALiveSocketAndOverlongPaths) {
  asio::io_context io;
  ConfigManager manager{*parse_config(json::object()).config, "", 1};
  struct : StatusProvider {
    json ports() override { return json::object(); }
    json stats() override { return json::object(); }
    void metrics(MetricsWriter&) override {}
    Health health() override { return {}; }
  } status;
  Api api{manager, status};
  const std::string path = "/tmp/meridian-live-" + std::to_string(getpid()) + ".sock";
  RestServer first(io, api), second(io, api);
  ASSERT_EQ(first.listen_unix(path), "");
  EXPECT_NE(second.listen_unix(path).find("another process"), std::string::npos);
  EXPECT_NE(second.listen_unix("/tmp/" + std::string(200, 'x')).find("Unix socket path"), std::string::npos);
  first.stop();
  EXPECT_EQ(second.listen_unix(path), "");  // stale now: replaced
  second.stop();
}

TEST(HostPort, Parsing) {
  std::string h;
  uint16_t p;
  EXPECT_TRUE(split_host_port("127.0.0.1:8080", h, p));
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 8080);
  EXPECT_TRUE(split_host_port("[::1]:9", h, p));
  EXPECT_EQ(h, "::1");
  EXPECT_FALSE(split_host_port("127.0.0.1", h, p));
  EXPECT_FALSE(split_host_port("127.0.0.1:99999", h, p));
  EXPECT_TRUE(is_loopback_address("127.0.0.5"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_FALSE(is_loopback_address("10.0.0.1"));
}

}  // namespace

TEST(TokenFile, PermissionsAndContentAreChecked) {
  char dir[] = "/tmp/meridian-token-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  const std::string path = std::string(dir) + "/token";
  auto write = [&](const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
  };
  std::string token;
  write("0123456789abcdef  \n", 0600);
  EXPECT_EQ(read_token_file(path, token), "");
  EXPECT_EQ(token, "0123456789abcdef");
  write("0123456789abcdef\n", 0640);
  EXPECT_EQ(read_token_file(path, token), "");
  write("0123456789abcdef\n", 0644);
  EXPECT_NE(read_token_file(path, token).find("chmod 600"), std::string::npos);
  write("0123456789abcdef\n", 0660);
  EXPECT_NE(read_token_file(path, token).find("chmod 600"), std::string::npos);
  write("   \t\n", 0600);
  EXPECT_NE(read_token_file(path, token).find("at least 16"), std::string::npos);
  write("0123456789 abcdef\n", 0600);
  EXPECT_NE(read_token_file(path, token).find("visible ASCII"), std::string::npos);
  EXPECT_NE(read_token_file(std::string(dir), token).find("not a regular file"), std::string::npos);
  EXPECT_NE(read_token_file(std::string(dir) + "/missing", token), "");
  std::filesystem::remove_all(dir);
}
