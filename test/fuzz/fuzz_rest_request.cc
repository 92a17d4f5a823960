// libFuzzer: raw bytes as an HTTP request to the REST API, through Beast's
// parser (with the server's limits) and the router. Every request must get
// a response; a config it applies must be valid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "config/api.h"
#include "config/log.h"

namespace {

using namespace meridian::config;

struct FixedStatus : StatusProvider {
  nlohmann::json ports() override { return {{"ports", nlohmann::json::array()}}; }
  nlohmann::json stats() override { return {{"ports", nlohmann::json::array()}}; }
  void metrics(MetricsWriter& w) override { w.gauge("meridian_fuzz", "fuzz"); w.sample({}, uint64_t{1}); }
  Health health() override { return {true, true, nlohmann::json::object()}; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] { meridian::log::set_level(meridian::log::Level::kError); return true; }();
  (void)quiet;
  http::request_parser<http::string_body> parser;
  parser.body_limit(kMaxBodyBytes);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  ConfigManager manager(*parse_config(nlohmann::json::object()).config, "", 1);
  FixedStatus status;
  Api api(manager, status);
  Response res = api.handle(parser.get());
  if (res.result_int() < 200 || res.result_int() > 599) std::abort();
  if (!parse_config(manager.document()).config) std::abort();
  return 0;
}
