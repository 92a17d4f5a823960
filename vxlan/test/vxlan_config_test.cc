// The "vxlan" config section: defaults, round trip, and every cross-field
// rule rejecting with the offending JSON pointer.
#include <gtest/gtest.h>

#include "config/model.h"
#include "vxlan/model.h"

namespace meridian::config {
namespace {

nlohmann::json base() {
  return nlohmann::json::parse(R"({
    "ports": [
      {"name": "access", "devargs": "net_null0"},
      {"name": "underlay", "devargs": "net_null1"},
      {"name": "other", "devargs": "net_null2"}
    ],
    "vxlan": {
      "vtep": {"interfaces": [{"port": "underlay", "ipv4": "10.1.0.1/24", "ipv6": "fd01::1/64"}],
               "routes": [{"prefix": "10.2.0.0/16", "next_hop": "10.1.0.254"}]},
      "bridge_domains": [{"vni": 100, "attachments": [{"port": "access"}], "flood": ["10.1.0.2", "fd01::2"],
                          "static_fdb": [{"mac": "02:00:00:00:00:01", "port": "access"},
                                         {"mac": "02:00:00:00:00:02", "vtep": "10.2.0.9"}],
                          "static_neighbors": [{"ip": "10.100.0.2", "mac": "02:bb:00:00:00:01"}]}]
    }
  })");
}

bool has_error(const ParseResult& r, const std::string& path) {
  for (const auto& e : r.errors) {
    if (e.path == path) return true;
  }
  return false;
}

std::string dump(const ParseResult& r) {
  std::string s;
  for (const auto& e : r.errors) s += e.path + ": " + e.reason + "\n";
  return s;
}

TEST(VxlanConfig, ValidDocumentParsesWithDefaultsAndRoundTrips) {
  auto r = parse_config(base());
  ASSERT_TRUE(r.config) << dump(r);
  const auto& vx = vxlan_section(*r.config);
  EXPECT_EQ(vx.vtep.udp_port, 4789u);
  EXPECT_EQ(vx.vtep.source_port_min, 49152u);
  EXPECT_EQ(vx.vtep.source_port_max, 65535u);
  EXPECT_FALSE(vx.vtep.dscp.has_value());
  ASSERT_EQ(vx.bridge_domains.size(), 1u);
  EXPECT_EQ(vx.bridge_domains[0].aging_seconds, 300u);
  EXPECT_TRUE(vx.bridge_domains[0].learning);
  EXPECT_TRUE(vx.bridge_domains[0].arp_suppression);
  auto again = parse_config(to_json(*r.config));
  ASSERT_TRUE(again.config) << dump(again);
  EXPECT_EQ(*again.config, *r.config);
  EXPECT_EQ(to_json(*again.config), to_json(*r.config));
}

struct BadCase {
  const char* name;
  const char* patch;  // JSON merge patch over base()
  const char* path;
};

class VxlanConfigRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(VxlanConfigRejects, NamesTheField) {
  auto doc = base();
  doc.merge_patch(nlohmann::json::parse(GetParam().patch));
  auto r = parse_config(doc);
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(has_error(r, GetParam().path)) << "wanted " << GetParam().path << ", got:\n" << dump(r);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VxlanConfigRejects,
    ::testing::Values(
        BadCase{"vni_zero", R"({"vxlan": {"bridge_domains": [{"vni": 0}]}})", "/vxlan/bridge_domains/0/vni"},
        BadCase{"vni_too_big", R"({"vxlan": {"bridge_domains": [{"vni": 16777216}]}})", "/vxlan/bridge_domains/0/vni"},
        BadCase{"duplicate_vni", R"({"vxlan": {"bridge_domains": [{"vni": 5}, {"vni": 5}]}})",
                "/vxlan/bridge_domains/1/vni"},
        BadCase{"unknown_attachment_port",
                R"({"vxlan": {"bridge_domains": [{"vni": 5, "attachments": [{"port": "nope"}]}]}})",
                "/vxlan/bridge_domains/0/attachments/0/port"},
        BadCase{"attachment_on_underlay",
                R"({"vxlan": {"bridge_domains": [{"vni": 5, "attachments": [{"port": "underlay"}]}]}})",
                "/vxlan/bridge_domains/0/attachments/0/port"},
        BadCase{"same_attachment_twice",
                R"({"vxlan": {"bridge_domains": [{"vni": 5, "attachments": [{"port": "other", "vlan": 7}]},
                                                 {"vni": 6, "attachments": [{"port": "other", "vlan": 7}]}]}})",
                "/vxlan/bridge_domains/1/attachments/0"},
        BadCase{"vlan_out_of_range",
                R"({"vxlan": {"bridge_domains": [{"vni": 5, "attachments": [{"port": "other", "vlan": 4095}]}]}})",
                "/vxlan/bridge_domains/0/attachments/0/vlan"},
        BadCase{"flood_not_ip", R"({"vxlan": {"bridge_domains": [{"vni": 5, "flood": ["10.1.0"]}]}})",
                "/vxlan/bridge_domains/0/flood/0"},
        BadCase{"flood_own_address", R"({"vxlan": {"bridge_domains": [{"vni": 5, "flood": ["10.1.0.1"]}]}})",
                "/vxlan/bridge_domains/0/flood/0"},
        BadCase{"flood_multicast", R"({"vxlan": {"bridge_domains": [{"vni": 5, "flood": ["239.1.1.1"]}]}})",
                "/vxlan/bridge_domains/0/flood/0"},
        BadCase{"static_fdb_both", R"({"vxlan": {"bridge_domains": [{"vni": 5, "attachments": [{"port": "other"}],
                 "static_fdb": [{"mac": "02:00:00:00:00:01", "port": "other", "vtep": "10.1.0.2"}]}]}})",
                "/vxlan/bridge_domains/0/static_fdb/0"},
        BadCase{"static_fdb_not_attached", R"({"vxlan": {"bridge_domains": [{"vni": 5, "attachments": [{"port": "other"}],
                 "static_fdb": [{"mac": "02:00:00:00:00:01", "port": "other", "vlan": 9}]}]}})",
                "/vxlan/bridge_domains/0/static_fdb/0/port"},
        BadCase{"static_fdb_multicast_mac", R"({"vxlan": {"bridge_domains": [{"vni": 5,
                 "static_fdb": [{"mac": "01:00:5e:00:00:01", "vtep": "10.1.0.2"}]}]}})",
                "/vxlan/bridge_domains/0/static_fdb/0/mac"},
        BadCase{"underlay_unknown_port", R"({"vxlan": {"vtep": {"interfaces": [{"port": "x", "ipv4": "10.1.0.1/24"}]}}})",
                "/vxlan/vtep/interfaces/0/port"},
        BadCase{"underlay_no_address", R"({"vxlan": {"vtep": {"interfaces": [{"port": "underlay"}]}}})",
                "/vxlan/vtep/interfaces/0"},
        BadCase{"underlay_network_address", R"({"vxlan": {"vtep": {"interfaces": [{"port": "underlay", "ipv4": "10.1.0.0/24"}]}}})",
                "/vxlan/vtep/interfaces/0/ipv4"},
        BadCase{"underlay_v6_in_v4", R"({"vxlan": {"vtep": {"interfaces": [{"port": "underlay", "ipv4": "fd01::1/64"}]}}})",
                "/vxlan/vtep/interfaces/0/ipv4"},
        BadCase{"route_host_bits", R"({"vxlan": {"vtep": {"routes": [{"prefix": "10.2.0.1/16", "next_hop": "10.1.0.254"}]}}})",
                "/vxlan/vtep/routes/0/prefix"},
        BadCase{"route_off_link", R"({"vxlan": {"vtep": {"routes": [{"prefix": "10.2.0.0/16", "next_hop": "10.9.0.1"}]}}})",
                "/vxlan/vtep/routes/0/next_hop"},
        BadCase{"route_family_mismatch", R"({"vxlan": {"vtep": {"routes": [{"prefix": "10.2.0.0/16", "next_hop": "fd01::9"}]}}})",
                "/vxlan/vtep/routes/0/next_hop"},
        BadCase{"source_ports_reversed", R"({"vxlan": {"vtep": {"source_port_min": 60000, "source_port_max": 50000}}})",
                "/vxlan/vtep/source_port_min"},
        BadCase{"dscp_bad", R"({"vxlan": {"vtep": {"dscp": 64}}})", "/vxlan/vtep/dscp"},
        BadCase{"ttl_zero", R"({"vxlan": {"vtep": {"ttl": 0}}})", "/vxlan/vtep/ttl"},
        BadCase{"replica_copy_max_past_jumbo", R"({"vxlan": {"vtep": {"replica_copy_max_bytes": 9217}}})",
                "/vxlan/vtep/replica_copy_max_bytes"},
        BadCase{"unknown_field", R"({"vxlan": {"bridge_domains": [{"vni": 5, "flod": []}]}})",
                "/vxlan/bridge_domains/0/flod"},
        BadCase{"xconnected_access", R"({"xconnect": [{"a": "access", "b": "other"}]})",
                "/vxlan/bridge_domains/0/attachments/0/port"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace meridian::config
