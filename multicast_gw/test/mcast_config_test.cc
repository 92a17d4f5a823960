// The "multicast" config section: defaults, round trip, and each refusal
// with the offending JSON pointer; the SSM ranges' "ff3x" form.
#include <gtest/gtest.h>

#include "config/model.h"
#include "multicast_gw/model.h"

namespace meridian::config {
namespace {

nlohmann::json base() {
  return nlohmann::json::parse(R"({
    "ports": [{"name": "a1", "devargs": "net_null0"}, {"name": "a2", "devargs": "net_null1"}],
    "vxlan": {"bridge_domains": [{"vni": 100, "attachments": [{"port": "a1"}, {"port": "a2"}]},
                                 {"vni": 200, "attachments": [{"port": "a2", "vlan": 20}]}]},
    "multicast": {"bridge_domains": [{"vni": 100}]}
  })");
}

std::vector<std::string> paths(const nlohmann::json& doc) {
  std::vector<std::string> out;
  for (const auto& e : parse_config(doc).errors) out.push_back(e.path);
  return out;
}

TEST(McastConfig, DefaultsRoundTripAndAnAbsentSectionSnoopsNothing) {
  auto parsed = parse_config(base());
  ASSERT_TRUE(parsed.config) << parsed.errors[0].path << ": " << parsed.errors[0].reason;
  const auto& mc = multicast_section(*parsed.config);
  ASSERT_EQ(mc.bridge_domains.size(), 1u);
  const auto& b = mc.bridge_domains[0];
  EXPECT_EQ(b.mode, "snoop");
  EXPECT_TRUE(b.querier.enabled);
  EXPECT_EQ(b.igmp_version, 3u);
  EXPECT_EQ(b.robustness, 2u);
  EXPECT_TRUE(b.ingress && b.edge);
  const nlohmann::json written = to_json(*parsed.config);
  EXPECT_EQ(written["multicast"]["bridge_domains"][0]["ssm_ranges"], (nlohmann::json{"232.0.0.0/8", "ff3x::/32"}));
  auto again = parse_config(written);
  ASSERT_TRUE(again.config);
  EXPECT_EQ(multicast_section(*again.config), mc);
  auto full = written;
  full["multicast"]["bridge_domains"][0]["static_subscriptions"] = nlohmann::json::parse(
      R"([{"group": "239.1.1.1", "source": "10.0.0.5", "port": "a1", "vlan": 0}])");
  full["multicast"]["bridge_domains"][0]["flows"] = nlohmann::json::parse(R"([{"group": "239.1.1.0/24", "rate_kbps": 3000}])");
  full["multicast"]["bridge_domains"][0]["budgets"] = nlohmann::json::parse(R"([{"port": "a2", "vlan": 0, "rate_kbps": 9000}])");
  full["multicast"]["bridge_domains"][0]["upstream"] = {{"port", "a1"}, {"vlan", 0}};
  auto parsed_full = parse_config(full);
  ASSERT_TRUE(parsed_full.config) << parsed_full.errors[0].path << ": " << parsed_full.errors[0].reason;
  EXPECT_EQ(to_json(*parsed_full.config)["multicast"], full["multicast"]);
  auto edge_only = written;
  edge_only["multicast"]["bridge_domains"][0]["roles"] = {"edge"};
  auto edge = parse_config(edge_only);
  ASSERT_TRUE(edge.config);
  EXPECT_FALSE(multicast_section(*edge.config).bridge_domains[0].ingress);
  EXPECT_EQ(to_json(*edge.config)["multicast"]["bridge_domains"][0]["roles"], (nlohmann::json{"edge"}));
  auto none = base();
  none.erase("multicast");
  auto empty = parse_config(none);
  ASSERT_TRUE(empty.config);
  EXPECT_TRUE(multicast_section(*empty.config).bridge_domains.empty());
}

TEST(McastConfig, EveryRefusalNamesItsPath) {
  struct Case {
    const char* patch;
    const char* path;
  };
  const Case cases[] = {
      {R"({"vni": 300})", "/multicast/bridge_domains/0/vni"},
      {R"({"vni": 100, "mode": "prune"})", "/multicast/bridge_domains/0/mode"},
      {R"({"vni": 100, "querier": {"ipv4": "239.1.1.1"}})", "/multicast/bridge_domains/0/querier/ipv4"},
      {R"({"vni": 100, "querier": {"ipv6": "fd00::1"}})", "/multicast/bridge_domains/0/querier/ipv6"},
      {R"({"vni": 100, "igmp_version": 4})", "/multicast/bridge_domains/0/igmp_version"},
      {R"({"vni": 100, "robustness": 0})", "/multicast/bridge_domains/0/robustness"},
      {R"({"vni": 100, "query_interval_s": 5, "query_response_interval_ms": 5000})",
       "/multicast/bridge_domains/0/query_response_interval_ms"},
      {R"({"vni": 100, "ssm_ranges": ["10.0.0.0/8"]})", "/multicast/bridge_domains/0/ssm_ranges/0"},
      {R"({"vni": 100, "ssm_ranges": ["ff3x::/8"]})", "/multicast/bridge_domains/0/ssm_ranges/0"},
      {R"({"vni": 100, "max_groups": 0})", "/multicast/bridge_domains/0/max_groups"},
      {R"({"vni": 100, "colour": "red"})", "/multicast/bridge_domains/0/colour"},
      {R"({"vni": 100, "roles": []})", "/multicast/bridge_domains/0/roles"},
      {R"({"vni": 100, "static_subscriptions": [{"group": "10.1.1.1", "port": "a1"}]})",
       "/multicast/bridge_domains/0/static_subscriptions/0/group"},
      {R"({"vni": 100, "static_subscriptions": [{"group": "239.1.1.1"}]})",
       "/multicast/bridge_domains/0/static_subscriptions/0/port"},
      {R"({"vni": 100, "static_subscriptions": [{"group": "239.1.1.1", "port": "a1", "vtep": "10.1.0.2"}]})",
       "/multicast/bridge_domains/0/static_subscriptions/0/vtep"},
      {R"({"vni": 100, "static_subscriptions": [{"group": "239.1.1.1", "port": "a1", "vlan": 7}]})",
       "/multicast/bridge_domains/0/static_subscriptions/0/port"},
      {R"({"vni": 100, "static_subscriptions": [{"group": "239.1.1.1", "vtep": "10.9.9.9"}]})",
       "/multicast/bridge_domains/0/static_subscriptions/0/vtep"},
      {R"({"vni": 100, "static_subscriptions": [{"group": "ff0e::1", "source": "10.0.0.1", "port": "a1"}]})",
       "/multicast/bridge_domains/0/static_subscriptions/0/source"},
      {R"({"vni": 100, "flows": [{"group": "239.1.1.0/24"}]})", "/multicast/bridge_domains/0/flows/0/rate_kbps"},
      {R"({"vni": 100, "flows": [{"group": "10.0.0.0/8", "rate_kbps": 1}]})", "/multicast/bridge_domains/0/flows/0/group"},
      {R"({"vni": 100, "budgets": [{"port": "a1", "rate_kbps": 1}, {"port": "a1", "rate_kbps": 2}]})",
       "/multicast/bridge_domains/0/budgets/1"},
      {R"({"vni": 100, "budgets": [{"port": "a1", "rate_kbps": 0}]})", "/multicast/bridge_domains/0/budgets/0/rate_kbps"},
      {R"({"vni": 100, "budgets": [{"vtep": "10.9.9.9", "vlan": 5, "rate_kbps": 1}]})",
       "/multicast/bridge_domains/0/budgets/0/vlan"},
      {R"({"vni": 100, "roles": ["edge"], "static_subscriptions": [{"group": "239.1.1.1", "vtep": "10.9.9.9"}]})",
       "/multicast/bridge_domains/0/static_subscriptions/0/vtep"},
      {R"({"vni": 100, "flows": [{"group": "ff0e::/16", "source": "10.0.0.1", "rate_kbps": 1}]})",
       "/multicast/bridge_domains/0/flows/0/source"},
      {R"({"vni": 100, "roles": "edge"})", "/multicast/bridge_domains/0/roles"},
      {R"({"vni": 100, "roles": ["edge", "core"]})", "/multicast/bridge_domains/0/roles/1"},
      {R"({"vni": 100, "roles": ["edge", "edge"]})", "/multicast/bridge_domains/0/roles/1"},
      {R"({"vni": 100, "upstream": {"port": "a9"}})", "/multicast/bridge_domains/0/upstream/port"},
      {R"({"vni": 100, "upstream": {"vlan": 0}})", "/multicast/bridge_domains/0/upstream/port"},
      {R"({"vni": 100, "upstream": {"port": "a1", "vtep": "10.9.9.9"}})", "/multicast/bridge_domains/0/upstream/vtep"},
      {R"({"vni": 100, "upstream": "a1"})", "/multicast/bridge_domains/0/upstream"},
      {R"({"vni": 100, "roles": ["edge"], "upstream": {"port": "a1"}})", "/multicast/bridge_domains/0/upstream"},
  };
  for (const auto& c : cases) {
    auto doc = base();
    doc["multicast"]["bridge_domains"][0] = nlohmann::json::parse(c.patch);
    const auto p = paths(doc);
    EXPECT_NE(std::find(p.begin(), p.end(), c.path), p.end()) << c.patch;
  }
  auto twice = base();
  twice["multicast"]["bridge_domains"].push_back({{"vni", 100}});
  const auto p = paths(twice);
  EXPECT_NE(std::find(p.begin(), p.end(), "/multicast/bridge_domains/1/vni"), p.end());
}

TEST(McastConfig, SsmRangesMatchEveryScopeOfFf3x) {
  const auto r = mcast::parse_ssm_range("ff3x::/32");
  ASSERT_TRUE(r);
  EXPECT_EQ(mcast::to_string(*r), "ff3x::/32");
  EXPECT_TRUE(r->contains(*parse_ip("ff3e::8000:1")));
  EXPECT_TRUE(r->contains(*parse_ip("ff35::1")));
  EXPECT_FALSE(r->contains(*parse_ip("ff3e:1::1"))) << "outside /32";
  EXPECT_FALSE(r->contains(*parse_ip("ff0e::1")));
  EXPECT_FALSE(r->contains(*parse_ip("232.1.1.1")));
  const auto v4 = mcast::parse_ssm_range("232.0.0.0/8");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains(*parse_ip("232.1.1.1")));
  EXPECT_FALSE(v4->contains(*parse_ip("239.1.1.1")));
}

}  // namespace
}  // namespace meridian::config
