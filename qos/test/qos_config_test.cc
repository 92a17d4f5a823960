// tc-style units and the "qos" config section: defaults, round trip, the
// strict/non-strict over-subscription rule, and a table of invalid trees each
// rejected with the offending JSON pointer.
#include <gtest/gtest.h>

#include <functional>

#include "config/model.h"
#include "config/units.h"
#include "qos/model.h"

namespace meridian::config {
namespace {

TEST(Units, RatesAreDecimalAndBytesPerSecondAreExplicit) {
  EXPECT_EQ(parse_rate("30gbit"), 30'000'000'000ULL);
  EXPECT_EQ(parse_rate("500mbit"), 500'000'000ULL);
  EXPECT_EQ(parse_rate("64kbit"), 64'000ULL);
  EXPECT_EQ(parse_rate("1.5Gbit"), 1'500'000'000ULL);
  EXPECT_EQ(parse_rate("100"), 100ULL);
  EXPECT_EQ(parse_rate("100bit"), 100ULL);
  EXPECT_EQ(parse_rate("10mbps"), 80'000'000ULL);  // bytes per second, as tc
  EXPECT_EQ(parse_rate("1kbps"), 8'000ULL);
  EXPECT_EQ(parse_rate("1kibit"), 1024ULL);
  EXPECT_EQ(parse_rate("1mibps"), 8'388'608ULL);
  for (const char* bad : {"", "gbit", "10 gbit", "10gb", "-5mbit", "1.5bit", "10xbit", "1e3mbit", "99999999999tbit"}) {
    EXPECT_FALSE(parse_rate(bad)) << bad;
  }
}

TEST(Units, SizesAreBinaryAsInTc) {
  EXPECT_EQ(parse_size("1500b"), 1500ULL);
  EXPECT_EQ(parse_size("1500"), 1500ULL);
  EXPECT_EQ(parse_size("10kb"), 10240ULL);
  EXPECT_EQ(parse_size("10k"), 10240ULL);
  EXPECT_EQ(parse_size("2mb"), 2097152ULL);
  EXPECT_EQ(parse_size("64kbit"), 8192ULL);  // kilobits: 1024 bits
  for (const char* bad : {"kb", "10kib", "1.1b", "ten"}) EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(Units, FormattingIsExactAndRoundTrips) {
  EXPECT_EQ(format_rate(30'000'000'000ULL), "30gbit");
  EXPECT_EQ(format_rate(1'500'000'000ULL), "1500mbit");
  EXPECT_EQ(format_rate(12345), "12345bit");
  EXPECT_EQ(format_size(65536), "64kb");
  EXPECT_EQ(format_size(1500), "1500b");
  for (uint64_t r : {8ULL, 999ULL, 64000ULL, 100'000'000'000ULL}) EXPECT_EQ(parse_rate(format_rate(r)), r);
  for (uint64_t b : {1ULL, 1023ULL, 1024ULL, 3ULL << 20}) EXPECT_EQ(parse_size(format_size(b)), b);
}

nlohmann::json base() {
  return nlohmann::json::parse(R"({
    "ports": [
      {"name": "access", "devargs": "net_null0"},
      {"name": "underlay", "devargs": "net_null1"}
    ],
    "qos": {"ports": [{
      "port": "underlay",
      "strict": true,
      "default_class": "mgmt",
      "classes": [
        {"id": "root", "rate": "100gbit"},
        {"id": "storage", "parent": "root", "rate": "80gbit", "ceil": "100gbit"},
        {"id": "rdma", "parent": "storage", "rate": "30gbit", "ceil": "100gbit", "prio": 0,
         "ecn": {"kmin": "20kb", "kmax": "200kb", "pmax": 0.2}, "dscp_remark": 26},
        {"id": "osd", "parent": "storage", "rate": "50gbit", "ceil": "60gbit", "prio": 1, "burst": "64kb"},
        {"id": "mgmt", "parent": "root", "rate": "10gbit", "ceil": 20000000000, "prio": 2,
         "limit_packets": 500, "limit_bytes": "1mb", "quantum": 3000}
      ],
      "rules": [
        {"class": "rdma", "protocol": "udp", "dst_ports": 4791},
        {"class": "osd", "protocol": "tcp", "dst_ports": "6800-7300", "dst": "10.20.0.0/16"},
        {"class": "rdma", "vni": 100, "inner": {"protocol": "udp", "dst_ports": "4791"}},
        {"class": "mgmt", "dscp": [16, 48], "pcp": [6, 7], "ingress_port": "access"}
      ]
    }]}
  })");
}

std::string dump(const FieldErrors& errors) {
  std::string s;
  for (const auto& e : errors) s += e.path + ": " + e.reason + "\n";
  return s;
}

TEST(QosConfig, ValidTreeParsesWithUnitsAndRoundTrips) {
  auto r = parse_config(base());
  ASSERT_TRUE(r.config) << dump(r.errors);
  EXPECT_TRUE(r.warnings.empty()) << dump(r.warnings);
  const QosPort& q = qos_section(*r.config).ports.at(0);
  EXPECT_EQ(q.classes.size(), 5u);
  EXPECT_EQ(q.classes[1].rate_bps, 80'000'000'000ULL);
  EXPECT_EQ(q.classes[2].ecn->kmax_bytes, 204800u);
  EXPECT_EQ(q.classes[3].burst_bytes, 65536u);
  EXPECT_EQ(*q.classes[4].ceil_bps, 20'000'000'000ULL);
  EXPECT_EQ(q.classes[4].overhead, 24u);
  EXPECT_EQ(q.rules[0].outer.protocol, 17);
  EXPECT_EQ(q.rules[1].outer.dst_ports->first, 6800);
  EXPECT_EQ(q.rules[1].outer.dst_ports->last, 7300);
  EXPECT_EQ(q.rules[2].inner->dst_ports->first, 4791);
  auto again = parse_config(to_json(*r.config));
  ASSERT_TRUE(again.config) << dump(again.errors);
  EXPECT_EQ(to_json(*again.config), to_json(*r.config));
}

TEST(QosConfig, OversubscriptionIsAnErrorOnlyInStrictMode) {
  auto doc = base();
  doc["qos"]["ports"][0]["classes"][3]["rate"] = "60gbit";  // 30 + 60 > 80
  doc["qos"]["ports"][0]["classes"][3]["ceil"] = "60gbit";
  auto strict = parse_config(doc);
  ASSERT_FALSE(strict.config);
  ASSERT_EQ(strict.errors.size(), 1u) << dump(strict.errors);
  EXPECT_EQ(strict.errors[0].path, "/qos/ports/0/classes/1/rate");
  doc["qos"]["ports"][0]["strict"] = false;
  auto lenient = parse_config(doc);
  ASSERT_TRUE(lenient.config) << dump(lenient.errors);
  ASSERT_EQ(lenient.warnings.size(), 1u);
  EXPECT_EQ(lenient.warnings[0].path, "/qos/ports/0/classes/1/rate");
}

// Each case replaces one thing in the valid document and names where the error must point.
TEST(QosConfig, InvalidTreesAreRejectedWithPaths) {
  using nlohmann::json;
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    const char* path;
  };
  const std::vector<Case> cases = {
      {"ceil below rate", [](json& q) { q["classes"][3]["ceil"] = "40gbit"; }, "/qos/ports/0/classes/3/ceil"},
      {"unknown parent", [](json& q) { q["classes"][3]["parent"] = "nope"; }, "/qos/ports/0/classes/3/parent"},
      {"duplicate id", [](json& q) { q["classes"][3]["id"] = "rdma"; }, "/qos/ports/0/classes/3/id"},
      {"cycle", [](json& q) { q["classes"][1]["parent"] = "osd"; }, "/qos/ports/0/classes/1/parent"},
      {"own parent", [](json& q) { q["classes"][3]["parent"] = "osd"; }, "/qos/ports/0/classes/3/parent"},
      {"two roots", [](json& q) { q["classes"][4].erase("parent"); }, "/qos/ports/0/classes/4/parent"},
      {"too deep",
       [](json& q) {
         std::string parent = "mgmt";
         for (int i = 0; i < 7; ++i) {
           const std::string id = "d" + std::to_string(i);
           q["classes"].push_back({{"id", id}, {"parent", parent}, {"rate", "1mbit"}});
           parent = id;
         }
         q["default_class"] = parent;
       },
       "/qos/ports/0/classes/11/parent"},
      {"bad rate unit", [](json& q) { q["classes"][2]["rate"] = "30gb"; }, "/qos/ports/0/classes/2/rate"},
      {"rate missing", [](json& q) { q["classes"][2].erase("rate"); }, "/qos/ports/0/classes/2/rate"},
      {"prio 8", [](json& q) { q["classes"][2]["prio"] = 8; }, "/qos/ports/0/classes/2/prio"},
      {"default is inner", [](json& q) { q["default_class"] = "storage"; }, "/qos/ports/0/default_class"},
      {"default unknown", [](json& q) { q["default_class"] = "gold"; }, "/qos/ports/0/default_class"},
      {"rule to inner class", [](json& q) { q["rules"][0]["class"] = "root"; }, "/qos/ports/0/rules/0/class"},
      {"rule port range reversed", [](json& q) { q["rules"][1]["dst_ports"] = "7300-6800"; },
       "/qos/ports/0/rules/1/dst_ports"},
      {"rule ports without tcp/udp", [](json& q) { q["rules"][0]["protocol"] = "icmp"; }, "/qos/ports/0/rules/0"},
      {"rule prefix with host bits", [](json& q) { q["rules"][1]["dst"] = "10.20.0.1/16"; },
       "/qos/ports/0/rules/1/dst"},
      {"rule dscp 64", [](json& q) { q["rules"][3]["dscp"] = {64}; }, "/qos/ports/0/rules/3/dscp/0"},
      {"rule unknown ingress", [](json& q) { q["rules"][3]["ingress_port"] = "eth9"; },
       "/qos/ports/0/rules/3/ingress_port"},
      {"ecn kmax below kmin", [](json& q) { q["classes"][2]["ecn"]["kmax"] = "10kb"; },
       "/qos/ports/0/classes/2/ecn/kmax"},
      {"ecn pmax 0", [](json& q) { q["classes"][2]["ecn"]["pmax"] = 0; }, "/qos/ports/0/classes/2/ecn/pmax"},
      {"ecn on inner class", [](json& q) { q["classes"][1]["ecn"] = {{"kmax", "10kb"}}; },
       "/qos/ports/0/classes/1/ecn"},
      {"unknown port", [](json& q) { q["port"] = "eth9"; }, "/qos/ports/0/port"},
      {"unknown field", [](json& q) { q["classes"][0]["colour"] = "red"; }, "/qos/ports/0/classes/0/colour"},
      {"quantum too small", [](json& q) { q["classes"][4]["quantum"] = 1; }, "/qos/ports/0/classes/4/quantum"},
  };
  const Config running = *parse_config(base()).config;
  for (const auto& c : cases) {
    auto doc = base();
    c.edit(doc["qos"]["ports"][0]);
    auto r = parse_config(doc);
    EXPECT_FALSE(r.config) << c.name;
    bool found = false;
    for (const auto& e : r.errors) found |= e.path == c.path;
    EXPECT_TRUE(found) << c.name << ": expected an error at " << c.path << ", got:\n" << dump(r.errors);
  }
  // A second tree for the same port is refused too.
  auto doc = base();
  doc["qos"]["ports"].push_back(doc["qos"]["ports"][0]);
  auto r = parse_config(doc);
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.errors.at(0).path, "/qos/ports/1/port");
  // Nothing above touched the running document.
  EXPECT_EQ(to_json(running), to_json(*parse_config(base()).config));
}

}  // namespace
}  // namespace meridian::config
