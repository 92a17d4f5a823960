// VXLAN pipeline tests: the VTEP through the real worker loop (in-process EAL,
// net_ring ports; shared fixture in test/pipeline/fixture.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "config/manager.h"
#include "dataplane/time_base.h"
#include "test/pipeline/fixture.h"
#include "vxlan/bridge_domain.h"
#include "vxlan/control.h"

using namespace meridian;
using namespace meridian::pipeline_test;

namespace {



using vxlan::BridgeDomainState;


TEST(VxlanFdb, LearnMoveAgeStaticAndLimitWithSimulatedTime) {
  const size_t size = rte_rcu_qsbr_get_memsize(1);
  auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("fdb_test_qsbr", size, RTE_CACHE_LINE_SIZE));
  ASSERT_EQ(rte_rcu_qsbr_init(qsbr, 1), 0);
  std::string error;
  auto bd = BridgeDomainState::create(100, 16, 1, qsbr, error);
  ASSERT_TRUE(bd) << error;
  using R = BridgeDomainState::LearnResult;
  const auto here = vxlan::location::local(0, 0), there = vxlan::location::remote(3);
  const auto a = mac_of("02:00:00:00:00:0a");
  EXPECT_EQ(bd->learn(a, here, 1000), R::kAdded);
  EXPECT_EQ(bd->learn(a, here, 1001), R::kRefreshed);
  EXPECT_EQ(bd->learn(a, there, 1002), R::kMoved);
  EXPECT_EQ(bd->totals().counters.moves, 1u);
  ASSERT_NE(bd->lookup(a.bytes.data()), nullptr);
  EXPECT_EQ(bd->lookup(a.bytes.data())->location.load(), there);

  const auto s = mac_of("02:00:00:00:00:5a");
  ASSERT_TRUE(bd->add_static(s, here));
  EXPECT_EQ(bd->learn(s, there, 1002), R::kStaticKept) << "learning never moves a static entry";

  EXPECT_EQ(bd->age(1002 + 299, 300), 0u);
  EXPECT_EQ(bd->age(1002 + 300, 300), 1u);
  EXPECT_EQ(bd->lookup(a.bytes.data()), nullptr);
  EXPECT_NE(bd->lookup(s.bytes.data()), nullptr) << "static entries never age";
  EXPECT_EQ(bd->totals().counters.ages, 1u);

  // Fill to the limit: the next learn is refused and counted, nothing evicted.
  for (int i = 0; i < 15; ++i) {
    config::MacAddress m = mac_of("02:00:00:00:01:00");
    m.bytes[5] = static_cast<uint8_t>(i);
    EXPECT_EQ(bd->learn(m, here, 2000), R::kAdded) << i;
  }
  EXPECT_EQ(bd->fdb_size(), 16u);
  EXPECT_EQ(bd->learn(mac_of("02:00:00:00:02:00"), here, 2000), R::kLimit);
  EXPECT_EQ(bd->totals().counters.learn_limit, 1u);
  EXPECT_EQ(bd->fdb_size(), 16u);
  EXPECT_NE(bd->lookup(s.bytes.data()), nullptr);
  // Aged slots come back (after the grace period, immediate with no readers online).
  EXPECT_EQ(bd->age(2000 + 300, 300), 15u);
  bd->reclaim();
  EXPECT_EQ(bd->learn(mac_of("02:00:00:00:02:00"), here, 2400), R::kAdded);

  // Suppression table: learned entries update, static ones win and stay.
  const auto ip = *config::parse_ip("10.100.0.2"), ip6 = *config::parse_ip("fd00:100::2");
  EXPECT_TRUE(bd->set_neighbor(ip, mac_of("02:bb:00:00:00:01"), false));
  EXPECT_EQ(*bd->neighbor(ip.bytes.data(), false) & 0xffffffffffffULL, vxlan::pack_mac(mac_of("02:bb:00:00:00:01").bytes.data()));
  EXPECT_TRUE(bd->set_neighbor(ip, mac_of("02:bb:00:00:00:02"), false)) << "a learned entry moves";
  EXPECT_TRUE(bd->set_neighbor(ip, mac_of("02:bb:00:00:00:09"), true));
  EXPECT_FALSE(bd->set_neighbor(ip, mac_of("02:bb:00:00:00:03"), false)) << "learning never overrides config";
  EXPECT_EQ(*bd->neighbor(ip.bytes.data(), false) >> 48 & 1, 1u);
  EXPECT_FALSE(bd->neighbor(ip6.bytes.data(), true)) << "IPv4 and IPv6 keys are distinct";
  EXPECT_TRUE(bd->set_neighbor(ip6, mac_of("02:bb:00:00:00:01"), false));
  bd->remove_neighbor(ip);
  EXPECT_FALSE(bd->neighbor(ip.bytes.data(), false));
  EXPECT_EQ(bd->neighbor_size(), 1u);
  bd.reset();
  rte_free(qsbr);
}


TEST(PipelineVxlan, FloodsWithSharedPayloadsDecapsLearnsAndCountsEveryDrop) {
  RingPort acc = make_ring_port("acc"), ul = make_ring_port("ul");
  json doc = config_for({acc, ul}, json::array());
  doc["vxlan"] = json::parse(R"({
    "vtep": {"interfaces": [{"port": "ul", "ipv4": "10.1.0.1/24"}], "replica_copy_max_bytes": 0},
    "bridge_domains": [{"vni": 100, "attachments": [{"port": "acc"}], "flood": ["10.1.0.2", "10.1.0.3"]}]
  })");
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  rte_ether_addr our{};
  rte_eth_macaddr_get(*dp->port_id("ul"), &our);
  ASSERT_EQ(dp->start_workers(), "");

  // The remote VTEPs ask for our address: we answer on the control queue and
  // learn their MACs (RFC 826 merge), which resolves both flood targets.
  inject(ul, {arp_request_from(kVtepMac, 2), arp_request_from(kVtep2Mac, 3)});
  // The control queue also carries our own solicitations: look for the replies.
  unsigned arp_replies = 0;
  for (const auto& f : collect(ul.tx[1], 4, dp.get(), 1000ms)) {
    vxlan::ArpView a;
    ASSERT_TRUE(vxlan::parse_arp(f.data() + 14, f.size() - 14, a));
    EXPECT_EQ(std::memcmp(a.sender_mac, our.addr_bytes, 6), 0);
    arp_replies += a.op == vxlan::kArpReply;
  }
  EXPECT_EQ(arp_replies, 2u);
  for (int i = 0; i < 20; ++i) dp->control_tick();
  auto vteps = vxlan_of(*dp).vteps_json();
  ASSERT_EQ(vteps["remote"].size(), 2u);
  for (const auto& v : vteps["remote"]) ASSERT_EQ(v["state"], "reachable") << vteps.dump();
  // host/ answered and resolved for VXLAN, and says so.
  const auto host = dp->resource(config::http::verb::get, "/api/v1/host", {});
  ASSERT_TRUE(host);
  const json& h = host->body;
  ASSERT_EQ(h["addresses"].size(), 1u) << h.dump();
  EXPECT_EQ(h["addresses"][0], (json{{"port", "ul"}, {"address", "10.1.0.1"}, {"owner", "vxlan"}}));
  ASSERT_EQ(h["neighbors"].size(), 2u) << h.dump();
  EXPECT_EQ(h["neighbors"][0]["state"], "reachable");
  EXPECT_EQ(h["neighbors"][0]["port"], "ul");
  EXPECT_EQ(h["clients"]["vxlan"]["replies"], 2) << h.dump();
  EXPECT_EQ(h["clients"]["vxlan"]["wanted"], 2) << h.dump();

  // Broadcast from hostA: one replica per VTEP, payload shared, never copied
  // (replica_copy_max_bytes 0; by default a frame this small is copied).
  const auto bcast = eth_frame("ff:ff:ff:ff:ff:ff", "02:aa:00:00:00:01", 1, 200);
  inject(acc, {bcast});
  auto reps = take(ul.tx[0], 2, dp.get());
  ASSERT_EQ(reps.size(), 2u);
  std::set<int> dsts;
  for (rte_mbuf* r : reps) {
    ASSERT_EQ(r->nb_segs, 2) << "header segment + shared payload";
    ASSERT_TRUE(RTE_MBUF_CLONED(r->next)) << "payload must be a clone, not a copy";
    auto bytes = bytes_of(r);
    vxlan::OuterView ov;
    ASSERT_EQ(vxlan::classify_underlay(bytes.data(), bytes.size(), 4789, ov), vxlan::UnderlayStatus::kVxlan);
    EXPECT_EQ(ov.vni, 100u);
    dsts.insert(ov.dst_ip[3]);
    EXPECT_EQ(std::vector<uint8_t>(bytes.begin() + ov.inner_offset, bytes.end()), bcast);
    EXPECT_EQ(bytes[14 + 6] & 0x40, 0x40) << "DF set";
    EXPECT_EQ(std::memcmp(bytes.data(), reps[0] == r ? kVtepMac : kVtep2Mac, 6) == 0 ||
                  std::memcmp(bytes.data(), kVtepMac, 6) == 0 || std::memcmp(bytes.data(), kVtep2Mac, 6) == 0,
              true);
  }
  EXPECT_EQ(rte_mbuf_from_indirect(reps[0]->next), rte_mbuf_from_indirect(reps[1]->next)) << "one shared payload";
  EXPECT_EQ(dsts, (std::set<int>{2, 3}));
  for (rte_mbuf* r : reps) rte_pktmbuf_free(r);

  // Decap from VTEP 10.1.0.2 towards the learned hostA: the inner frame, exactly.
  for (int i = 0; i < 20; ++i) dp->control_tick();
  ASSERT_EQ(vxlan_of(*dp).fdb_json(100, mac_of("02:aa:00:00:00:01"))["entries"][0]["type"], "local");
  const auto inner = eth_frame("02:aa:00:00:00:01", "02:bb:00:00:00:01", 2, 300);
  inject(ul, {vxlan_frame(2, kVtepMac, our.addr_bytes, 100, inner)});
  auto out = collect(acc.tx[0], 1, dp.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], inner);
  for (int i = 0; i < 20; ++i) dp->control_tick();
  auto fdb = vxlan_of(*dp).fdb_json(100, mac_of("02:bb:00:00:00:01"));
  ASSERT_EQ(fdb["entries"].size(), 1u) << fdb.dump();
  EXPECT_EQ(fdb["entries"][0]["vtep"], "10.1.0.2");

  // Known unicast back: encapsulated in place (one segment) to 10.1.0.2 only.
  const auto back = eth_frame("02:bb:00:00:00:01", "02:aa:00:00:00:01", 3, 120);
  inject(acc, {back});
  auto uni = take(ul.tx[0], 1, dp.get());
  ASSERT_EQ(uni.size(), 1u);
  EXPECT_EQ(uni[0]->nb_segs, 1);
  auto ub = bytes_of(uni[0]);
  rte_pktmbuf_free(uni[0]);
  vxlan::OuterView ov;
  ASSERT_EQ(vxlan::classify_underlay(ub.data(), ub.size(), 4789, ov), vxlan::UnderlayStatus::kVxlan);
  EXPECT_EQ(ov.dst_ip[3], 2);
  EXPECT_EQ(std::vector<uint8_t>(ub.begin() + ov.inner_offset, ub.end()), back);
  const uint16_t sport = vxlan::be16(ub.data() + 34);
  EXPECT_GE(sport, 49152);

  // Every refusal is a named, counted drop.
  inject(ul, {vxlan_frame(2, kVtepMac, our.addr_bytes, 999, inner),           // unknown VNI
              vxlan_frame(2, kVtepMac, our.addr_bytes, 100, inner, 9),        // not our address
              vxlan_frame(2, kVtepMac, our.addr_bytes, 100, inner, 1, false)});  // I flag clear
  inject(acc, {eth_frame("02:bb:00:00:00:01", "02:aa:00:00:00:01", 4, 1500)});  // 1500 + 50 > MTU 1500
  const auto ul_id = *dp->port_id("ul"), acc_id = *dp->port_id("acc");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (dp->port_totals(ul_id).drops_total() + dp->port_totals(acc_id).drops_total() < 4 &&
         std::chrono::steady_clock::now() < deadline) {
    dp->control_tick();
    std::this_thread::sleep_for(1ms);
  }
  dp->stop_workers();
  const auto tu = dp->port_totals(ul_id), ta = dp->port_totals(acc_id);
  EXPECT_EQ(drops(tu, vxlan::Drop::kVxlanUnknownVni), 1u);
  EXPECT_EQ(drops(tu, vxlan::Drop::kNotLocalAddress), 1u);
  EXPECT_EQ(drops(tu, vxlan::Drop::kVxlanNoIFlag), 1u);
  EXPECT_EQ(drops(ta, vxlan::Drop::kMtuExceeded), 1u);
  auto bds = vxlan_of(*dp).bridge_domains_json(100);
  EXPECT_EQ(bds["bridge_domains"][0]["counters"]["drops"]["mtu_exceeded"], 1) << bds.dump();
  EXPECT_EQ(bds["bridge_domains"][0]["counters"]["decap_packets"], 1);
  EXPECT_EQ(bds["bridge_domains"][0]["counters"]["replicas"], 2);
  dp.reset();
  free_ring_port(acc);
  free_ring_port(ul);
}


/// Three broadcasts from one host, 100, 101 and 102 bytes long: a
/// replica's inner length says which of them it carries.
std::vector<std::vector<uint8_t>> three_broadcasts() {
  std::vector<std::vector<uint8_t>> frames;
  for (uint8_t k = 0; k < 3; ++k) frames.push_back(eth_frame("ff:ff:ff:ff:ff:ff", "02:aa:00:00:00:01", k, 100 + k));
  return frames;
}

// Head-end replication wider than the worker's TxBuffer and the bulk
// allocation chunk: every VTEP of a 100-entry flood list gets its replica,
// with the right outer header and the shared inner frame; an unresolved
// VTEP in the middle costs its own replica only, counted by name.
TEST(PipelineVxlan, WideHeadEndReplicationReachesEveryVtepOnce) {
  RingPort acc = make_ring_port("acc"), ul = make_ring_port("ul");
  json doc = config_for({acc, ul}, json::array());
  json neighbors = json::array(), flood = json::array();
  constexpr unsigned kVteps = 100, kUnresolved = 50;
  for (unsigned v = 0; v < kVteps; ++v) {
    const std::string ip = "10.1.1." + std::to_string(10 + v);
    flood.push_back(ip);
    char mac[18];
    std::snprintf(mac, sizeof mac, "02:00:00:00:02:%02x", v);
    if (v != kUnresolved) neighbors.push_back({{"ip", ip}, {"mac", mac}});
  }
  doc["vxlan"] = {{"vtep", {{"interfaces", {{{"port", "ul"}, {"ipv4", "10.1.0.1/16"}}}}, {"neighbors", neighbors}}},
                  {"bridge_domains", {{{"vni", 100}, {"attachments", {{{"port", "acc"}}}}, {"flood", flood}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->start_workers(), "");
  const auto frames = three_broadcasts();
  inject(acc, frames);
  const size_t want = 3 * (kVteps - 1);
  auto reps = take(ul.tx[0], want, dp.get());
  ASSERT_EQ(reps.size(), want);
  std::vector<std::set<unsigned>> seen(3);
  for (rte_mbuf* r : reps) {
    auto bytes = bytes_of(r);
    ASSERT_EQ(r->nb_segs, 1) << "a small frame's replica is one buffer, a copy (replica_copy_max_bytes)";
    rte_pktmbuf_free(r);
    vxlan::OuterView ov;
    ASSERT_EQ(vxlan::classify_underlay(bytes.data(), bytes.size(), 4789, ov), vxlan::UnderlayStatus::kVxlan);
    const std::vector<uint8_t> inner(bytes.begin() + ov.inner_offset, bytes.end());
    const unsigned k = inner.size() - 100u;
    ASSERT_LT(k, 3u);
    EXPECT_EQ(inner, frames[k]);
    const unsigned v = ov.dst_ip[3] - 10u;
    EXPECT_EQ(bytes[5], v) << "next-hop MAC of VTEP " << v;
    EXPECT_TRUE(seen[k].insert(v).second) << "VTEP " << v << " got frame " << k << " twice";
  }
  for (const auto& s : seen) {
    EXPECT_EQ(s.size(), kVteps - 1);
    EXPECT_EQ(s.count(kUnresolved), 0u);
  }
  dp->stop_workers();
  const json c = vxlan_of(*dp).bridge_domains_json(100)["bridge_domains"][0]["counters"];
  EXPECT_EQ(c["replicas"], want) << c.dump();
  EXPECT_EQ(c["encap_packets"], want);
  EXPECT_EQ(c["replica_drops"]["underlay_unresolved"], 3) << c.dump();
  EXPECT_EQ(rte_ring_count(ul.tx[0]), 0u) << "no replica beyond one per VTEP";
  EXPECT_EQ(dp->port_totals(*dp->port_id("acc")).drops_total(), 0u) << "every frame left through some replica";
  dp.reset();
  free_ring_port(acc);
  free_ring_port(ul);
}


// VTEPs behind two underlay ports, alternating in the flood list: each
// replica chunk leaves as runs of one port (TxBuffer::emit_run), so the
// runs switch at every VTEP. Every VTEP gets each frame once, on its own
// port, and each port carries the frames in the order they came.
TEST(PipelineVxlan, ReplicasToVtepsBehindTwoPortsKeepEachPortsOrder) {
  RingPort acc = make_ring_port("acc"), ul = make_ring_port("ul"), ul2 = make_ring_port("ul2");
  json doc = config_for({acc, ul, ul2}, json::array());
  json neighbors = json::array(), flood = json::array();
  constexpr unsigned kPerPort = 20;  // 40 VTEPs: more than one chunk of 16
  for (unsigned v = 0; v < kPerPort; ++v) {
    for (unsigned side = 1; side <= 2; ++side) {
      const std::string ip = "10." + std::to_string(side) + ".0." + std::to_string(10 + v);
      flood.push_back(ip);
      char mac[18];
      std::snprintf(mac, sizeof mac, "02:00:00:00:%02x:%02x", side, v);
      neighbors.push_back({{"ip", ip}, {"mac", mac}});
    }
  }
  const json interfaces = {{{"port", "ul"}, {"ipv4", "10.1.0.1/24"}}, {{"port", "ul2"}, {"ipv4", "10.2.0.1/24"}}};
  doc["vxlan"] = {{"vtep", {{"interfaces", interfaces}, {"neighbors", neighbors}}},
                  {"bridge_domains", {{{"vni", 100}, {"attachments", {{{"port", "acc"}}}}, {"flood", flood}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->start_workers(), "");
  const auto frames = three_broadcasts();
  inject(acc, frames);
  for (auto [port, side] : {std::pair{&ul, 1u}, std::pair{&ul2, 2u}}) {
    auto reps = take(port->tx[0], 3 * kPerPort, dp.get());
    ASSERT_EQ(reps.size(), 3 * kPerPort) << "port ul" << side;
    std::vector<std::set<unsigned>> seen(3);
    unsigned last_frame = 0;
    for (rte_mbuf* r : reps) {
      auto bytes = bytes_of(r);
      rte_pktmbuf_free(r);
      vxlan::OuterView ov;
      ASSERT_EQ(vxlan::classify_underlay(bytes.data(), bytes.size(), 4789, ov), vxlan::UnderlayStatus::kVxlan);
      const unsigned k = static_cast<unsigned>(bytes.size() - ov.inner_offset) - 100u;
      ASSERT_LT(k, 3u);
      EXPECT_GE(k, last_frame) << "frame " << k << " after frame " << last_frame << " on ul" << side;
      last_frame = k;
      EXPECT_EQ(ov.dst_ip[1], side) << "a VTEP of the other port's subnet on ul" << side;
      EXPECT_EQ(bytes[4], side) << "next-hop MAC";
      EXPECT_TRUE(seen[k].insert(ov.dst_ip[3]).second) << "a VTEP got frame " << k << " twice";
    }
    for (const auto& s : seen) EXPECT_EQ(s.size(), kPerPort);
  }
  dp->stop_workers();
  EXPECT_EQ(rte_ring_count(ul.tx[0]) + rte_ring_count(ul2.tx[0]), 0u) << "no replica beyond one per VTEP";
  EXPECT_EQ(vxlan_of(*dp).bridge_domains_json(100)["bridge_domains"][0]["counters"]["replicas"], 6 * kPerPort);
  dp.reset();
  free_ring_port(acc);
  free_ring_port(ul);
  free_ring_port(ul2);
}

/// Verifies an IPv6 VXLAN frame's UDP checksum the way a receiver does.
bool udp6_checksum_ok(const std::vector<uint8_t>& f) {
  const uint8_t* ip = f.data() + 14;
  const uint8_t* udp = ip + 40;
  const uint16_t len = vxlan::be16(udp + 4);
  if (vxlan::be16(udp + 6) == 0) return false;
  const uint32_t sum = vxlan::ipv6_pseudo_sum(ip + 8, ip + 24, len, vxlan::kProtoUdp);
  return vxlan::checksum_finish(vxlan::checksum_add(udp, len, sum)) == 0;
}

TEST(PipelineVxlan, Ipv6UnderlayRepliesAndUnicastCarryValidUdpChecksums) {
  RingPort acc = make_ring_port("acc"), ul = make_ring_port("ul");
  json doc = config_for({acc, ul}, json::array());
  doc["vxlan"] = json::parse(R"({
    "vtep": {"interfaces": [{"port": "ul", "ipv6": "fd01::1/64"}], "replica_copy_max_bytes": 256,
             "neighbors": [{"ip": "fd01::2", "mac": "02:00:00:00:01:02"}, {"ip": "fd01::3", "mac": "02:00:00:00:01:03"}]},
    "bridge_domains": [{"vni": 200, "attachments": [{"port": "acc"}], "flood": ["fd01::2", "fd01::3"],
                        "static_fdb": [{"mac": "02:bb:00:00:00:01", "vtep": "fd01::2"}]}]
  })");
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  auto vteps = vxlan_of(*dp).vteps_json();
  for (const auto& v : vteps["remote"]) ASSERT_EQ(v["state"], "static") << vteps.dump();
  ASSERT_EQ(dp->start_workers(), "");
  // Odd lengths exercise the checksum's trailing byte; 2 targets use
  // replicas: copies for the 201-byte frame, a shared payload for the 301.
  const auto bcast = eth_frame("ff:ff:ff:ff:ff:ff", "02:aa:00:00:00:01", 7, 201);
  const auto bcast_shared = eth_frame("ff:ff:ff:ff:ff:ff", "02:aa:00:00:00:01", 9, 301);
  const auto uni = eth_frame("02:bb:00:00:00:01", "02:aa:00:00:00:01", 8, 333);
  inject(acc, {bcast, bcast_shared, uni});
  auto out = take(ul.tx[0], 5, dp.get());
  // Alone, the unicast frame's burst leaves whole by one port, rewritten:
  // its tx bytes are the encapsulated frame's, not the received one's.
  inject(acc, {uni});
  for (rte_mbuf* m : take(ul.tx[0], 1, dp.get())) out.push_back(m);
  dp->stop_workers();
  ASSERT_EQ(out.size(), 6u);
  unsigned copies = 0, shared = 0;
  uint64_t sent_bytes = 0;
  for (rte_mbuf* m : out) {
    auto bytes = bytes_of(m);
    copies += bytes.size() == bcast.size() + 70 && m->nb_segs == 1;
    shared += bytes.size() == bcast_shared.size() + 70 && m->nb_segs == 2;
    sent_bytes += bytes.size();
    rte_pktmbuf_free(m);
    vxlan::OuterView ov;
    ASSERT_EQ(vxlan::classify_underlay(bytes.data(), bytes.size(), 4789, ov), vxlan::UnderlayStatus::kVxlan);
    EXPECT_TRUE(ov.ipv6);
    EXPECT_EQ(ov.vni, 200u);
    EXPECT_TRUE(udp6_checksum_ok(bytes)) << "frame of " << bytes.size() << " bytes, " << (m->nb_segs == 2 ? "replica" : "unicast");
  }
  EXPECT_EQ(copies, 2u);
  EXPECT_EQ(shared, 2u);
  EXPECT_EQ(dp->port_totals(*dp->port_id("ul")).tx_bytes, sent_bytes);
  dp.reset();
  free_ring_port(acc);
  free_ring_port(ul);
}


}  // namespace
