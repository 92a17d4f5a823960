// REST routing without sockets: status codes, error bodies with paths,
// ETag/If-Match, X-Request-Id, health and auth.
#include <gtest/gtest.h>

#include "config/api.h"

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
  std::optional<Resource> resource(http::verb method, const std::string& path,
                                   const std::map<std::string, std::string>&) override {
    if (path != "/api/v1/module/thing") return std::nullopt;
    if (method != http::verb::get) return Resource{http::status::method_not_allowed, {{"error", "no"}}, "GET, HEAD"};
    return Resource{http::status::ok, {{"thing", 1}}};
  }
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
  EXPECT_EQ(r[http::field::allow], "GET, HEAD, PUT, PATCH");
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

// Hardening regressions: each failed before (500, a body on HEAD, no Allow
// header, a lower-case scheme refused, the last duplicate key silently won).
TEST_F(ApiTest, BytesThatAreNotUtf8Are4xxWithAJsonBody) {
  auto put = api.handle(make(http::verb::put, "/api/v1/config", "{\"ports\": [{\"name\": \"a\xff\"}]}"));
  EXPECT_EQ(put.result_int(), 400);
  EXPECT_EQ(body_of(put)["error"], "malformed JSON");
  auto path = api.handle(make(http::verb::get, "/api/v1/\xff\xfe"));
  EXPECT_EQ(path.result_int(), 404);
  EXPECT_EQ(body_of(path)["error"], "not found");
  auto query = api.handle(make(http::verb::put, "/api/v1/config?dry_run=\xc3\x28", "{}"));
  EXPECT_EQ(query.result_int(), 400);
  auto key = api.handle(make(http::verb::put, "/api/v1/config?\xff=1", "{}"));
  EXPECT_EQ(key.result_int(), 400);
  EXPECT_TRUE(body_of(key).contains("details"));
  EXPECT_EQ(manager.generation(), 1u);
}

TEST_F(ApiTest, HeadIsTheGetWithoutItsBody) {
  const auto get = api.handle(make(http::verb::get, "/api/v1/stats"));
  const auto head = api.handle(make(http::verb::head, "/api/v1/stats"));
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_TRUE(head.body().empty());
  EXPECT_EQ(head[http::field::content_length], std::to_string(get.body().size()));
  const auto missing = api.handle(make(http::verb::head, "/api/v1/nothing"));
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_TRUE(missing.body().empty());
  const auto module = api.handle(make(http::verb::head, "/api/v1/module/thing"));
  EXPECT_EQ(module.result_int(), 200);
  EXPECT_TRUE(module.body().empty());
}

TEST_F(ApiTest, EveryMethodNotAllowedNamesWhatIs) {
  const auto r = api.handle(make(http::verb::delete_, "/api/v1/module/thing"));
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[http::field::allow], "GET, HEAD");
  EXPECT_EQ(api.handle(make(http::verb::post, "/api/v1/stats"))[http::field::allow], "GET, HEAD");
}

TEST_F(ApiTest, DuplicateKeysAreRefusedAtTheirPath) {
  auto r = api.handle(make(http::verb::put, "/api/v1/config",
                           R"({"ports": [{"name": "a", "devargs": "net_ring0", "name": "b"}]})"));
  EXPECT_EQ(r.result_int(), 400);
  auto b = body_of(r);
  EXPECT_EQ(b["details"][0]["path"], "/ports/0/name");
  EXPECT_NE(b["details"][0]["reason"].get<std::string>().find("duplicate key"), std::string::npos);
  EXPECT_EQ(manager.generation(), 1u);
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
  // The Unix socket is guarded by its file mode, not the token.
  EXPECT_EQ(api.handle(make(http::verb::get, "/api/v1/config"), Origin::kLocalSocket).result_int(), 200);
}

TEST(ApiAuth, TheSchemeIsCaseInsensitiveAndARefusalClosesTheConnection) {
  ConfigManager manager{base(), "", 1};
  FakeStatus status;
  Api api{manager, status, ApiOptions{"s3cret"}};
  auto req = make(http::verb::get, "/api/v1/config");
  for (const char* auth : {"bearer s3cret", "BEARER s3cret", "Bearer   s3cret"}) {
    req.set(http::field::authorization, auth);
    EXPECT_EQ(api.handle(req).result_int(), 200) << auth;
    EXPECT_TRUE(api.authorized(req));
  }
  for (const char* auth : {"Basic s3cret", "Bearers3cret", "Bearer s3cre", "Bearer s3crett", "bearer"}) {
    req.set(http::field::authorization, auth);
    const auto r = api.handle(req);
    EXPECT_EQ(r.result_int(), 401) << auth;
    EXPECT_FALSE(r.keep_alive());
  }
}

}  // namespace
