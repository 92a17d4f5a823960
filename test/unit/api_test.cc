// REST routing without sockets: status codes, error bodies with paths,
// ETag/If-Match, X-Request-Id, health and auth.
#include <gtest/gtest.h>

#include "api.h"

using namespace meridian::config;
using nlohmann::json;

namespace {

struct FakeStatus : StatusProvider {
  bool ready = true;
  json ports() override { return {{"ports", json::array()}}; }
  json stats() override { return {{"ports", json::array()}}; }
  void metrics(MetricsWriter& w) override {
    w.counter("meridian_test_total", "test");
    w.sample({{"port", "a"}}, uint64_t{1});
  }
  Health health() override { return {true, ready, {{"workers", json::array()}}}; }
};

Config base() {
  return *parse_config(json::parse(R"({"ports": [{"name": "a", "devargs": "net_ring0"}]})")).config;
}

Request make(http::verb verb, const std::string& target, const std::string& body = "",
             const std::string& content_type = "application/json") {
  Request r{verb, target, 11};
  if (!body.empty()) {
    r.set(http::field::content_type, content_type);
    r.body() = body;
  }
  r.prepare_payload();
  return r;
}

json body_of(const Response& r) { return json::parse(r.body()); }

class ApiTest : public ::testing::Test {
 protected:
  ConfigManager manager{base(), "", 1};
  FakeStatus status;
  Api api{manager, status};
};

TEST_F(ApiTest, GetConfigCarriesGenerationEtag) {
  auto r = api.handle(make(http::verb::get, "/api/v1/config"));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[http::field::etag], "\"1\"");
  EXPECT_EQ(body_of(r)["ports"][0]["name"], "a");
}

TEST_F(ApiTest, MalformedJsonIs400) {
  auto r = api.handle(make(http::verb::put, "/api/v1/config", "{\"ports\": ["));
  EXPECT_EQ(r.result_int(), 400);
  auto b = body_of(r);
  EXPECT_EQ(b["error"], "malformed JSON");
  EXPECT_NE(b["details"][0]["reason"].get<std::string>().find("byte"), std::string::npos);
  EXPECT_EQ(manager.generation(), 1u);
}

TEST_F(ApiTest, InvalidConfigIs422WithPathAndSameGeneration) {
  auto r = api.handle(make(http::verb::patch, "/api/v1/config",
                           R"({"ports": [{"name": "a", "devargs": "net_ring0", "mtu": "big"}]})",
                           "application/merge-patch+json"));
  EXPECT_EQ(r.result_int(), 422);
  auto b = body_of(r);
  EXPECT_EQ(b["details"][0]["path"], "/ports/0/mtu");
  EXPECT_EQ(r[http::field::etag], "\"1\"");
  EXPECT_EQ(manager.generation(), 1u);
}

TEST_F(ApiTest, PatchAppliesAndIfMatchIsHonoured) {
  auto patch = make(http::verb::patch, "/api/v1/config", R"({"punt": {"ethertypes": ["0x88cc"]}})");
  patch.set(http::field::if_match, "\"1\"");
  auto r = api.handle(patch);
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[http::field::etag], "\"2\"");
  auto stale = api.handle(patch);  // still says generation 1
  EXPECT_EQ(stale.result_int(), 412);
  EXPECT_EQ(manager.generation(), 2u);
}

TEST_F(ApiTest, DryRunReturnsDiffOnly) {
  auto r = api.handle(make(http::verb::patch, "/api/v1/config?dry_run=true", R"({"xconnect": []})"));
  EXPECT_EQ(r.result_int(), 200);
  auto b = body_of(r);
  EXPECT_TRUE(b["dry_run"]);
  EXPECT_FALSE(b["changed"]);  // xconnect was already empty
  auto r2 = api.handle(make(http::verb::patch, "/api/v1/config?dry_run=true",
                            R"({"punt": {"ethertypes": [35020]}})"));
  auto b2 = body_of(r2);
  EXPECT_TRUE(b2["changed"]);
  EXPECT_EQ(b2["diff"][0]["op"], "add");
  EXPECT_EQ(manager.generation(), 1u);
}

TEST_F(ApiTest, BadQueryAndHeaderAre400) {
  EXPECT_EQ(api.handle(make(http::verb::patch, "/api/v1/config?dry_run=perhaps", "{}")).result_int(), 400);
  EXPECT_EQ(api.handle(make(http::verb::patch, "/api/v1/config?force=1", "{}")).result_int(), 400);
  auto r = make(http::verb::patch, "/api/v1/config", "{}");
  r.set(http::field::if_match, "\"abc\"");
  EXPECT_EQ(api.handle(r).result_int(), 400);
  EXPECT_EQ(api.handle(make(http::verb::patch, "/api/v1/config", "[1]")).result_int(), 400);
}

TEST_F(ApiTest, DeepNestingAndHugeNumbersAre400NotACrash) {
  std::string deep;
  for (int i = 0; i < 200000; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 200000; ++i) deep += "}";
  auto r = api.handle(make(http::verb::patch, "/api/v1/config", deep));
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_NE(body_of(r)["details"][0]["reason"].get<std::string>().find("nesting"), std::string::npos);
  auto big = api.handle(make(http::verb::put, "/api/v1/config", R"({"dataplane": {"mbufs": 1e400}})"));
  EXPECT_EQ(big.result_int(), 400);
  EXPECT_EQ(manager.generation(), 1u);
}

TEST_F(ApiTest, WrongContentTypeIs415) {
  auto r = api.handle(make(http::verb::put, "/api/v1/config", "{}", "text/plain"));
  EXPECT_EQ(r.result_int(), 415);
}

TEST_F(ApiTest, UnknownPathIs404AndWrongMethodIs405) {
  EXPECT_EQ(api.handle(make(http::verb::get, "/api/v1/nothing")).result_int(), 404);
  auto r = api.handle(make(http::verb::post, "/api/v1/config", "{}"));
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[http::field::allow], "GET, PUT, PATCH");
  EXPECT_EQ(api.handle(make(http::verb::delete_, "/metrics")).result_int(), 405);
}

TEST_F(ApiTest, RequestIdEchoedOrGenerated) {
  auto req = make(http::verb::get, "/livez");
  req.set("X-Request-Id", "trace-abc");
  EXPECT_EQ(api.handle(req)["X-Request-Id"], "trace-abc");
  auto gen = api.handle(make(http::verb::get, "/livez"))["X-Request-Id"];
  EXPECT_EQ(gen.size(), 16u);
}

TEST_F(ApiTest, ReadinessFollowsTheDataPath) {
  EXPECT_EQ(api.handle(make(http::verb::get, "/readyz")).result_int(), 200);
  status.ready = false;
  auto r = api.handle(make(http::verb::get, "/readyz"));
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_TRUE(body_of(r).contains("checks"));
  EXPECT_EQ(api.handle(make(http::verb::get, "/healthcheck")).result_int(), 503);
  EXPECT_EQ(api.handle(make(http::verb::get, "/livez")).result_int(), 200);
}

TEST_F(ApiTest, MetricsAreTextExposition) {
  auto r = api.handle(make(http::verb::get, "/metrics"));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_NE(r[http::field::content_type].find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(r.body().find("meridian_test_total{port=\"a\"} 1"), std::string::npos);
}

TEST(ApiAuth, TokenRequiredExceptLivez) {
  ConfigManager manager{base(), "", 1};
  FakeStatus status;
  Api api{manager, status, ApiOptions{"s3cret"}};
  EXPECT_EQ(api.handle(make(http::verb::get, "/api/v1/config")).result_int(), 401);
  EXPECT_EQ(api.handle(make(http::verb::get, "/livez")).result_int(), 200);
  auto req = make(http::verb::get, "/api/v1/config");
  req.set(http::field::authorization, "Bearer s3cret");
  EXPECT_EQ(api.handle(req).result_int(), 200);
  req.set(http::field::authorization, "Bearer wrong");
  EXPECT_EQ(api.handle(req).result_int(), 401);
}

}  // namespace
