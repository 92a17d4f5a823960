// IGMP/MLD snooping through the real worker loop (in-process EAL, net_ring
// ports; shared fixture in test/pipeline/fixture.h): three access ports of
// one bridge domain, reports punted and applied, the querier's queries on
// every attachment, multicast data only where it was asked for, leaves, and
// refused frames counted by name.
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "multicast_gw/drop_reasons.h"
#include "multicast_gw/module.h"
#include "net/checksum.h"
#include "test/pipeline/fixture.h"
#include "vxlan/drop_reasons.h"

using namespace meridian;
using namespace meridian::pipeline_test;

namespace {

using config::IpAddress;

IpAddress ip(const char* text) { return *config::parse_ip(text); }

mcast::Sender host(uint8_t n) {
  mcast::Sender s{{0x02, 0xaa, 0, 0, 0, n}, IpAddress::v4(std::array<uint8_t, 4>{10, 100, 0, n}.data())};
  return s;
}

/// An IPv4 UDP datagram to `group` from `source`, 100 bytes of payload.
std::vector<uint8_t> udp_to(const char* group, const char* source, uint8_t tag = 0) {
  const IpAddress g = ip(group), s = ip(source);
  std::vector<uint8_t> f(14 + 20 + 8 + 100, tag);
  mcast::multicast_mac(g, f.data());
  const uint8_t src_mac[6] = {0x02, 0xbb, 0, 0, 0, 1};
  std::memcpy(&f[6], src_mac, 6);
  net::put16(&f[12], net::kEtherIpv4);
  uint8_t* iph = &f[14];
  iph[0] = 0x45;
  net::put16(iph + 2, 128);
  iph[8] = 16;
  iph[9] = net::kProtoUdp;
  std::memcpy(iph + 12, s.bytes.data(), 4);
  std::memcpy(iph + 16, g.bytes.data(), 4);
  net::put16(iph + 10, net::ipv4_header_checksum(iph, 20));
  net::put16(iph + 20, 5004);
  net::put16(iph + 22, 5004);
  net::put16(iph + 24, 108);
  return f;
}

std::vector<uint8_t> report(uint8_t from, mcast::RecordType t, const char* group, std::vector<const char*> sources = {}) {
  mcast::GroupRecord r{t, ip(group), {}};
  for (const char* s : sources) r.sources.push_back(ip(s));
  return mcast::build_report_frames(host(from), 4, std::vector<mcast::GroupRecord>{r})[0];
}

/// Every frame waiting on a ring, decoded where it is IGMP/MLD.
std::vector<mcast::FrameMembership> memberships(rte_ring* r) {
  std::vector<mcast::FrameMembership> out;
  void* m;
  while (rte_ring_dequeue(r, &m) == 0) {
    const auto f = bytes_of(static_cast<rte_mbuf*>(m));
    rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    mcast::FrameMembership fm;
    if (mcast::decode_frame(f, fm) == mcast::DecodeStatus::kOk) out.push_back(fm);
  }
  return out;
}

size_t drain(rte_ring* r) {
  size_t n = 0;
  void* m;
  while (rte_ring_dequeue(r, &m) == 0) {
    rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    ++n;
  }
  return n;
}

TEST(PipelineMulticast, SnoopingSendsMulticastOnlyWhereItWasAskedFor) {
  RingPort a1 = make_ring_port("a1"), a2 = make_ring_port("a2"), a3 = make_ring_port("a3"), ul = make_ring_port("ul");
  json doc = config_for({a1, a2, a3, ul}, json::array());
  doc["vxlan"] = json::parse(R"({
    "vtep": {"interfaces": [{"port": "ul", "ipv4": "10.1.0.1/24"}]},
    "bridge_domains": [{"vni": 100, "attachments": [{"port": "a1"}, {"port": "a2"}, {"port": "a3"}]}]
  })");
  doc["multicast"] = json::parse(R"({"bridge_domains": [{"vni": 100, "querier": {"ipv4": "10.100.0.254"},
    "last_member_query_interval_ms": 100, "query_interval_s": 10, "query_response_interval_ms": 1000}]})");
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  auto* mc = dp->module<mcast::MulticastModule>();
  ASSERT_NE(mc, nullptr);
  EXPECT_EQ(config::to_json(*config::parse_config(doc).config)["multicast"]["bridge_domains"][0]["ssm_ranges"],
            (json{"232.0.0.0/8", "ff3x::/32"}));
  ASSERT_EQ(dp->start_workers(), "");

  // The querier starts on every attachment: an IGMPv3 and an MLDv2 general query.
  for (RingPort* p : {&a1, &a2, &a3}) {
    std::vector<mcast::FrameMembership> got;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
      dp->control_tick();
      for (auto& fm : memberships(p->tx[1])) got.push_back(fm);
    }
    ASSERT_EQ(got.size(), 2u) << p->name;
    std::set<uint8_t> families;
    for (const auto& fm : got) {
      EXPECT_EQ(fm.message.kind, mcast::MessageKind::kQuery);
      EXPECT_TRUE(fm.message.query.general());
      families.insert(fm.message.family);
      if (fm.message.family == 4) {
        EXPECT_EQ(fm.source, ip("10.100.0.254"));
      }
    }
    EXPECT_EQ(families, (std::set<uint8_t>{4, 6}));
  }

  // Host 1 (a1) joins 239.1.1.1 from any source; host 2 (a2) joins 232.1.1.1 from 10.10.0.5 only.
  inject(a1, {report(1, mcast::RecordType::kToExclude, "239.1.1.1")});
  inject(a2, {report(2, mcast::RecordType::kAllow, "232.1.1.1", {"10.10.0.5"})});
  auto routes = [&] { return dp->resource(config::http::verb::get, "/api/v1/multicast/routes", {})->body["routes"]; };
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (routes().size() < 2 && std::chrono::steady_clock::now() < deadline) dp->control_tick();
  ASSERT_EQ(routes().size(), 2u) << routes().dump();
  const json groups = dp->resource(config::http::verb::get, "/api/v1/multicast/igmp/groups", {{"vni", "100"}})->body;
  ASSERT_EQ(groups["groups"].size(), 2u) << groups.dump();
  // Bad requests name their parameter.
  const auto bad_vni = dp->resource(config::http::verb::get, "/api/v1/multicast/igmp/groups", {{"vni", "x"}});
  EXPECT_EQ(bad_vni->status, config::http::status::bad_request);
  EXPECT_EQ(bad_vni->body["details"][0]["path"], "?vni") << bad_vni->body.dump();
  const auto unknown = dp->resource(config::http::verb::get, "/api/v1/multicast/routes", {{"colour", "red"}});
  EXPECT_EQ(unknown->status, config::http::status::bad_request);
  EXPECT_EQ(dp->resource(config::http::verb::post, "/api/v1/multicast/routes", {})->status,
            config::http::status::method_not_allowed);
  // The reports were taken, not flooded.
  for (RingPort* p : {&a1, &a2, &a3}) EXPECT_EQ(drain(p->tx[0]), 0u) << p->name;

  // Data from a3: 239.1.1.1 reaches a1 only; 232.1.1.1 from 10.10.0.5 a2
  // only, from another source nobody; an unknown group nobody; a link-local
  // group everybody.
  const auto to_asm = udp_to("239.1.1.1", "10.10.0.9", 1), to_ssm = udp_to("232.1.1.1", "10.10.0.5", 2);
  inject(a3, {to_asm, to_ssm, udp_to("232.1.1.1", "10.10.0.6", 3), udp_to("239.2.2.2", "10.10.0.9", 4),
              udp_to("224.0.0.251", "10.10.0.9", 5)});
  auto at1 = collect(a1.tx[0], 2, dp.get(), 2000ms), at2 = collect(a2.tx[0], 2, dp.get(), 2000ms);
  ASSERT_EQ(at1.size(), 2u);
  ASSERT_EQ(at2.size(), 2u);
  EXPECT_EQ(at1[0], to_asm);
  EXPECT_EQ(at1[1][14 + 16], 224) << "the link-local group floods";
  EXPECT_EQ(at2[0], to_ssm);
  EXPECT_EQ(at2[1][14 + 16], 224);
  const auto a3_id = *dp->port_id("a3");
  const auto no_receivers = [&] { return drops(dp->port_totals(a3_id), vxlan::Drop::kMcastNoReceivers); };
  const auto settle_until = std::chrono::steady_clock::now() + 2s;
  while (no_receivers() < 2 && std::chrono::steady_clock::now() < settle_until) dp->control_tick();
  EXPECT_EQ(no_receivers(), 2u) << "232.1.1.1 from 10.10.0.6 and 239.2.2.2";
  // Each route counted its one frame, where it came in and what each outgoing got.
  const json counted = routes();
  ASSERT_EQ(counted.size(), 2u);
  auto by_group = [&](const char* g) {
    for (const auto& r : counted) {
      if (r["group"] == g) return r;
    }
    return json();
  };
  for (const auto& [r, frame, egress] :
       {std::tuple{by_group("232.1.1.1"), to_ssm, "a2"}, std::tuple{by_group("239.1.1.1"), to_asm, "a1"}}) {
    EXPECT_EQ(r["packets"], 1) << r.dump();
    EXPECT_EQ(r["bytes"], frame.size()) << r.dump();
    EXPECT_EQ(r["incoming"], (json{{"port", "a3"}, {"vlan", 0}})) << r.dump();
    ASSERT_EQ(r["outgoing"].size(), 1u) << r.dump();
    EXPECT_EQ(r["outgoing"][0]["port"], egress);
    EXPECT_EQ(r["outgoing"][0]["packets"], 1) << r.dump();
    EXPECT_GT(r["outgoing"][0]["expires_in_ms"].get<int64_t>(), 10'000) << r.dump();
  }

  // Host 1 leaves: a group-specific query on a1, then (no answer, LMQT
  // 200 ms) the route is gone and its data has nowhere to go.
  inject(a1, {report(1, mcast::RecordType::kToInclude, "239.1.1.1")});
  std::vector<mcast::FrameMembership> asked;
  const auto leave_deadline = std::chrono::steady_clock::now() + 3s;
  while (routes().size() > 1 && std::chrono::steady_clock::now() < leave_deadline) {
    dp->control_tick();
    for (auto& fm : memberships(a1.tx[1])) asked.push_back(fm);
  }
  EXPECT_EQ(routes().size(), 1u) << routes().dump();
  bool group_query = false;
  for (const auto& fm : asked) group_query |= fm.message.query.group == ip("239.1.1.1");
  EXPECT_TRUE(group_query);
  inject(a3, {to_asm});
  const auto gone_until = std::chrono::steady_clock::now() + 2s;
  while (no_receivers() < 3 && std::chrono::steady_clock::now() < gone_until) dp->control_tick();
  EXPECT_EQ(no_receivers(), 3u);

  // A report with a bad checksum is refused and counted on its port; state unchanged.
  auto bad = report(2, mcast::RecordType::kBlock, "232.1.1.1", {"10.10.0.5"});
  bad[14 + 24 + 2] ^= 0xff;
  inject(a2, {bad});
  const auto a2_id = *dp->port_id("a2");
  const auto refused_until = std::chrono::steady_clock::now() + 2s;
  while (drops(dp->port_totals(a2_id), mcast::McastDrop::kBadChecksum) < 1 && std::chrono::steady_clock::now() < refused_until) {
    dp->control_tick();
  }
  EXPECT_EQ(drops(dp->port_totals(a2_id), mcast::McastDrop::kBadChecksum), 1u);
  // Had the BLOCK applied, 10.10.0.5 would be queried and its timer lowered.
  const json after = dp->resource(config::http::verb::get, "/api/v1/multicast/igmp/groups", {})->body["groups"];
  ASSERT_EQ(after.size(), 1u) << after.dump();
  EXPECT_GT(after[0]["sources"][0]["expires_in_ms"].get<int64_t>(), 10'000) << after.dump();
  const json querier = dp->resource(config::http::verb::get, "/api/v1/multicast/querier", {})->body;
  EXPECT_EQ(querier["refused"]["bad_checksum"], 1) << querier.dump();
  EXPECT_EQ(querier["interfaces"].size(), 6u);
  EXPECT_EQ(querier["interfaces"][0]["querier"], "self");
  dp->stop_workers();
  dp.reset();
  for (RingPort* p : {&a1, &a2, &a3, &ul}) free_ring_port(*p);
}

/// An MLDv2 report from a link-local host address.
std::vector<uint8_t> report6(uint8_t from, mcast::RecordType t, const char* group) {
  mcast::Sender h = host(from);
  h.address = IpAddress::v6(std::array<uint8_t, 16>{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, from}.data());
  return mcast::build_report_frames(h, 6, std::vector<mcast::GroupRecord>{{t, ip(group), {}}})[0];
}

std::vector<uint8_t> udp6_to(const char* group, uint8_t tag) {
  const IpAddress g = ip(group), s = ip("fd00:100::9");
  std::vector<uint8_t> f(14 + 40 + 8 + 100, tag);
  mcast::multicast_mac(g, f.data());
  const uint8_t src_mac[6] = {0x02, 0xbb, 0, 0, 0, 1};
  std::memcpy(&f[6], src_mac, 6);
  net::put16(&f[12], net::kEtherIpv6);
  uint8_t* iph = &f[14];
  iph[0] = 0x60;
  net::put16(iph + 4, 108);
  iph[6] = net::kProtoUdp;
  iph[7] = 16;
  std::memcpy(iph + 8, s.bytes.data(), 16);
  std::memcpy(iph + 24, g.bytes.data(), 16);
  net::put16(iph + 40, 5004);
  net::put16(iph + 42, 5004);
  net::put16(iph + 44, 108);
  return f;
}

std::vector<uint8_t> tagged(std::vector<uint8_t> f, uint16_t vlan) {
  const uint8_t tag[4] = {0x81, 0x00, static_cast<uint8_t>(vlan >> 8), static_cast<uint8_t>(vlan)};
  f.insert(f.begin() + 12, tag, tag + 4);
  return f;
}

// A router heard on an attachment (a query from a lower address) makes it a
// router port: it takes over as querier, hears the hosts' reports, and gets
// every group's data; IPv6 data follows MLD; a tagged attachment snoops on
// its VLAN; the sender's own attachment never gets its frame back.
TEST(PipelineMulticast, RouterPortsIpv6AndTaggedAttachments) {
  RingPort a1 = make_ring_port("a1"), a2 = make_ring_port("a2"), a3 = make_ring_port("a3");
  json doc = config_for({a1, a2, a3}, json::array());
  doc["vxlan"] = json::parse(R"({"bridge_domains": [{"vni": 100,
    "attachments": [{"port": "a1"}, {"port": "a2", "vlan": 10}, {"port": "a3"}]}]})");
  doc["multicast"] = json::parse(R"({"bridge_domains": [{"vni": 100, "querier": {"ipv4": "10.100.0.254"}}]})");
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->start_workers(), "");
  for (int i = 0; i < 5; ++i) dp->control_tick();
  for (RingPort* p : {&a1, &a2, &a3}) drain(p->tx[1]);

  // A router on a3 queries from 10.100.0.1: the hosts on a1 and a2 (tagged) hear it.
  mcast::Query q;
  q.group = ip("0.0.0.0");
  q.max_response_ms = 10'000;
  q.robustness = 2;
  q.interval_s = 125;
  inject(a3, {mcast::build_query_frame(host(1), q, 3)});
  // (Relayed by the control lcore: on each port's control queue.)
  const auto on1 = collect(a1.tx[1], 1, dp.get(), 2000ms), on2 = collect(a2.tx[1], 1, dp.get(), 2000ms);
  ASSERT_EQ(on1.size(), 1u);
  ASSERT_EQ(on2.size(), 1u);
  mcast::FrameMembership fm;
  ASSERT_EQ(mcast::decode_frame(on2[0], fm), mcast::DecodeStatus::kOk);
  EXPECT_EQ(fm.vlan_count, 1u) << "relayed with a2's tag";
  EXPECT_EQ(net::be16(&on2[0][14]) & 0x0fff, 10);
  const json querier = dp->resource(config::http::verb::get, "/api/v1/multicast/querier", {})->body;
  for (const auto& i : querier["interfaces"]) {
    if (i["protocol"] == "igmp") {
      EXPECT_EQ(i["querier"], "10.100.0.1") << i.dump();
    }
  }

  // Host on a1 joins (IPv4 and IPv6); its IGMP report is relayed to the
  // IPv4 router on a3 only (no MLD router was heard).
  inject(a1, {report(2, mcast::RecordType::kToExclude, "239.1.1.1"),
              report6(2, mcast::RecordType::kToExclude, "ff0e::1")});
  const auto relayed = collect(a3.tx[1], 2, dp.get(), 1000ms);
  ASSERT_EQ(relayed.size(), 1u);
  ASSERT_EQ(mcast::decode_frame(relayed[0], fm), mcast::DecodeStatus::kOk);
  EXPECT_EQ(fm.message.family, 4);
  EXPECT_EQ(drain(a2.tx[0]) + drain(a2.tx[1]), 0u);
  // A host on the tagged a2 joins 239.2.2.2.
  inject(a2, {tagged(report(3, mcast::RecordType::kToExclude, "239.2.2.2"), 10)});
  auto routes = [&] { return dp->resource(config::http::verb::get, "/api/v1/multicast/routes", {})->body["routes"]; };
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (routes().size() < 3 && std::chrono::steady_clock::now() < deadline) dp->control_tick();
  ASSERT_EQ(routes().size(), 3u) << routes().dump();
  drain(a3.tx[0]);
  drain(a3.tx[1]);

  // Data from a1: 239.1.1.1 goes to the router port only (a1 is the sender);
  // an unknown group to the router port; 239.2.2.2 to a2 (tagged) and a3;
  // ff0e::1 from a2 to a1 only (a3 is no IPv6 router port).
  inject(a1, {udp_to("239.1.1.1", "10.10.0.9", 1), udp_to("239.9.9.9", "10.10.0.9", 2),
              udp_to("239.2.2.2", "10.10.0.9", 3)});
  inject(a2, {tagged(udp6_to("ff0e::1", 4), 10)});
  const auto at3 = collect(a3.tx[0], 4, dp.get(), 1000ms);
  EXPECT_EQ(at3.size(), 3u);
  const auto at2 = collect(a2.tx[0], 1, dp.get(), 2000ms);
  ASSERT_EQ(at2.size(), 1u);
  EXPECT_EQ(net::be16(&at2[0][12]), net::kEtherVlan) << "tagged for a2";
  EXPECT_EQ(at2[0][18 + 16 + 3], 2) << "239.2.2.2";
  const auto at1 = collect(a1.tx[0], 1, dp.get(), 2000ms);
  ASSERT_EQ(at1.size(), 1u);
  EXPECT_EQ(at1[0], udp6_to("ff0e::1", 4)) << "untagged for a1";
  dp->control_tick();
  EXPECT_EQ(drain(a1.tx[0]) + drain(a2.tx[0]), 0u) << "no copy back to a sender, none extra";

  // A stacked tag is not snooped: the VXLAN stage drops it as access_tag_stack.
  auto stacked = tagged(tagged(report(3, mcast::RecordType::kToExclude, "239.3.3.3"), 10), 10);
  stacked[12] = 0x88;
  stacked[13] = 0xa8;
  inject(a2, {stacked});
  const auto a2_id = *dp->port_id("a2");
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (drops(dp->port_totals(a2_id), vxlan::Drop::kAccessTagStack) < 1 && std::chrono::steady_clock::now() < until) {
    dp->control_tick();
  }
  EXPECT_EQ(drops(dp->port_totals(a2_id), vxlan::Drop::kAccessTagStack), 1u);
  dp->stop_workers();
  dp.reset();
  for (RingPort* p : {&a1, &a2, &a3}) free_ring_port(*p);
}

}  // namespace
