// QoS pipeline tests: the HTB egress stage on the real worker loop (in-process
// EAL, net_ring and net_pcap ports; shared fixture in test/pipeline/fixture.h).
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
#include "qos/drop_reasons.h"
#include "test/pipeline/fixture.h"

using namespace meridian;
using namespace meridian::pipeline_test;

namespace {


/// An IPv4/UDP frame to `dst_port` with DSCP/ECN `tos`, `len` bytes, and
/// `seq` in the payload.
std::vector<uint8_t> udp_frame(uint16_t dst_port, uint8_t tos, size_t len, uint32_t seq) {
  std::vector<uint8_t> f(len, 0);
  const uint8_t head[] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00};
  std::memcpy(f.data(), head, sizeof head);
  uint8_t* ip = &f[14];
  const size_t ip_len = len - 14;
  ip[0] = 0x45;
  ip[1] = tos;
  ip[2] = static_cast<uint8_t>(ip_len >> 8);
  ip[3] = static_cast<uint8_t>(ip_len);
  ip[8] = 64;
  ip[9] = 17;
  const uint8_t addrs[] = {10, 0, 0, 1, 10, 0, 0, 2};
  std::memcpy(ip + 12, addrs, 8);
  const uint16_t check = net::ipv4_header_checksum(ip, 20);
  ip[10] = static_cast<uint8_t>(check >> 8);
  ip[11] = static_cast<uint8_t>(check);
  uint8_t* udp = ip + 20;
  udp[0] = 0x30;
  udp[2] = static_cast<uint8_t>(dst_port >> 8);
  udp[3] = static_cast<uint8_t>(dst_port);
  udp[4] = static_cast<uint8_t>((ip_len - 20) >> 8);
  udp[5] = static_cast<uint8_t>(ip_len - 20);
  std::memcpy(udp + 8, &seq, 4);
  return f;
}

json qos_classes(dataplane::Dataplane& dp, const std::string& port) {
  auto r = dp.resource(config::http::verb::get, "/api/v1/qos/classes", {{"port", port}});
  EXPECT_TRUE(r && r->status == config::http::status::ok) << (r ? r->body.dump() : "no resource");
  return r ? r->body["ports"][0] : json();
}

json class_named(const json& port, const std::string& id) {
  for (const auto& c : port["classes"]) {
    if (c["id"] == id) return c;
  }
  ADD_FAILURE() << "no class " << id;
  return json();
}

// A pcap source replaying two flows as fast as the worker polls, through a
// 100 Mbit tree with two leaves (30 and 10 Mbit, ceil 100) into a ring the
// test drains and counts: the link is shared 3:1 by quantum, the bulk leaf
// is remarked, and every received packet is sent, dropped with a reason or
// still queued.
TEST(Pipeline, QosShapesPcapTrafficIntoACountingSink) {
  char tmpl[] = "/tmp/meridian-qos-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 64; ++i) frames.push_back(udp_frame(i % 2 ? 6000 : 5000, i % 2 ? 0 : 46 << 2, 1000, i));
  write_pcap(dir + "/in.pcap", frames);
  RingPort out = make_ring_port("out", 65536);
  const int n = ++g_unique;
  json doc = config_for({out}, json::array());
  doc["ports"].push_back({{"name", "src"},
                          {"devargs", "net_pcap_qsrc" + std::to_string(n) + ",rx_pcap=" + dir + "/in.pcap,infinite_rx=1"}});
  doc["xconnect"] = {{{"a", "src"}, {"b", "out"}}};
  doc["qos"] = {{"ports",
                 {{{"port", "out"},
                   {"default_class", "bulk"},
                   {"classes",
                    {{{"id", "root"}, {"rate", "100mbit"}},
                     {{"id", "gold"}, {"parent", "root"}, {"rate", "30mbit"}, {"ceil", "100mbit"}},
                     {{"id", "bulk"}, {"parent", "root"}, {"rate", "10mbit"}, {"ceil", "100mbit"}, {"dscp_remark", 10}}}},
                   {"rules", {{{"class", "gold"}, {"dscp", json::array({46})}}}}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->start_workers(), "");

  // Drain the sink for 2.5 s; count the wire bytes of the last 2 s per flow.
  // The window is bounded by two full drains of the sink, not by when the
  // loop happened to dequeue: a stall of this thread (a noisy 2-core
  // machine) then delays the counting, never moves frames out of the window.
  std::map<uint16_t, uint64_t> wire_bytes;
  uint64_t received = 0, remarked_ok = 0;
  rte_mbuf* burst[64];
  auto drain = [&](bool measuring) {
    unsigned total = 0;
    while (const unsigned got = rte_ring_dequeue_burst(out.tx[0], reinterpret_cast<void**>(burst), 64, nullptr)) {
      for (unsigned i = 0; i < got; ++i) {
        const auto bytes = bytes_of(burst[i]);
        const uint16_t port = static_cast<uint16_t>(bytes[36] << 8 | bytes[37]);
        const uint8_t tos = bytes[15];
        if ((port == 5000 && tos == 46 << 2) || (port == 6000 && tos == 10 << 2)) ++remarked_ok;
        if (measuring) wire_bytes[port] += bytes.size() + 24;
        ++received;
        rte_pktmbuf_free(burst[i]);
      }
      total += got;
    }
    return total;
  };
  auto run_until = [&](std::chrono::steady_clock::time_point until, bool measuring) {
    while (std::chrono::steady_clock::now() < until) {
      if (!drain(measuring)) {
        dp->control_tick();
        std::this_thread::sleep_for(200us);
      }
    }
  };
  run_until(std::chrono::steady_clock::now() + 500ms, false);
  drain(false);
  const auto window_start = std::chrono::steady_clock::now();
  run_until(window_start + 2000ms, true);
  const auto window_end = std::chrono::steady_clock::now();
  drain(true);
  const double seconds = std::chrono::duration<double>(window_end - window_start).count();
  const json live = qos_classes(*dp, "out");
  dp->stop_workers();
  EXPECT_EQ(remarked_ok, received);  // gold keeps EF, bulk leaves as DSCP 10 (checksums: see udp_frame)
  const double gold = wire_bytes[5000] * 8 / seconds, bulk = wire_bytes[6000] * 8 / seconds;
  // Both backlogged: gold 30 + 60 * 3/4 = 75 Mbit, bulk 10 + 60 * 1/4 = 25 Mbit.
  // Measured in real time (steady_clock): the shaper's rate runs on the
  // calibrated TSC, so the link is within 1 % (with DPDK's rounded figure it
  // ran 0.19 % fast on AMD).
  EXPECT_NEAR(gold + bulk, 100e6, 1e6);
  EXPECT_NEAR(gold, 75e6, 4e6);
  EXPECT_NEAR(bulk, 25e6, 4e6);
  EXPECT_TRUE(live["stats_fresh"]) << live.dump();
  EXPECT_GT(class_named(live, "bulk")["stats"]["borrows"].get<uint64_t>(), 0u);
  EXPECT_GT(class_named(live, "root")["stats"]["lends"].get<uint64_t>(), 0u);

  // Every packet received is accounted for: sent, tail-dropped or queued.
  while (rte_ring_dequeue_burst(out.tx[0], reinterpret_cast<void**>(burst), 64, nullptr)) {}
  const json final_state = qos_classes(*dp, "out");
  uint64_t queued = 0, class_drops = 0, class_packets = 0;
  for (const auto& c : final_state["classes"]) {
    if (!c["leaf"]) continue;
    queued += c["stats"]["queue_packets"].get<uint64_t>();
    class_drops += c["stats"]["drops"].get<uint64_t>();
    class_packets += c["stats"]["packets"].get<uint64_t>();
  }
  const auto rx = dp->port_totals(*dp->port_id("src"));
  const auto tx = dp->port_totals(*dp->port_id("out"));
  EXPECT_GT(drops(tx, qos::Drop::kQosTailDrop), 0u);
  EXPECT_EQ(drops(tx, qos::Drop::kQosTailDrop), class_drops);
  EXPECT_EQ(tx.tx_packets, class_packets);
  EXPECT_EQ(rx.rx_packets, tx.tx_packets + tx.drops_total() + queued);
  // The rate estimate follows the counters (EWMA over ~2 s of steady load).
  EXPECT_NEAR(class_named(live, "gold")["stats"]["rate_estimate_bps"].get<double>(), 75e6, 15e6);
  dp.reset();
  free_ring_port(out);
  std::filesystem::remove_all(dir);
}

// Live changes while packets wait in a slow tree: a rate change keeps the
// queue, a new shape moves it, removing QoS sends it out; a bad tree is
// refused with its path and changes nothing. Nothing is lost or reordered.
TEST(Pipeline, QosChangesKeepQueuedPackets) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  json doc = config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}));
  auto tree = [](const std::string& rate) {
    return json{{"ports", {{{"port", "b"}, {"default_class", "bulk"},
                            {"classes", {{{"id", "root"}, {"rate", rate}},
                                         {{"id", "bulk"}, {"parent", "root"}, {"rate", rate}}}}}}}};
  };
  doc["qos"] = tree("1mbit");
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  config::ConfigManager manager(*config::parse_config(doc).config, "", 1);
  manager.set_backend(dp.get());
  ASSERT_EQ(dp->start_workers(), "");
  constexpr uint32_t kFrames = 200;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < kFrames; ++i) sent.push_back(udp_frame(7000, 0, 1000, i));
  inject(a, sent);
  auto queued = [&] {
    uint64_t q = 0;
    const json port = qos_classes(*dp, "b");
    for (const auto& c : port["classes"]) q += c["stats"]["queue_packets"].get<uint64_t>();
    return q;
  };
  // 1 Mbit lets ~3 frames out beyond the burst in 20 ms: nearly all wait.
  auto early = collect(b.tx[0], kFrames, dp.get(), 20ms);
  EXPECT_GT(queued(), kFrames / 2);

  auto light = manager.merge_patch({{"qos", tree("2mbit")}}, false, std::nullopt);
  ASSERT_EQ(light.http_status, 200) << light.to_json().dump();
  EXPECT_EQ(qos_classes(*dp, "b")["classes"][1]["rate_bps"], 2000000);
  EXPECT_GT(queued(), kFrames / 2);

  json reshaped = tree("2mbit");
  reshaped["ports"][0]["classes"].push_back({{"id", "gold"}, {"parent", "root"}, {"rate", "1mbit"}});
  reshaped["ports"][0]["classes"][1]["rate"] = "1mbit";
  auto shape = manager.merge_patch({{"qos", reshaped}}, false, std::nullopt);
  ASSERT_EQ(shape.http_status, 200) << shape.to_json().dump();
  EXPECT_GT(queued(), kFrames / 2);
  const uint64_t generation = manager.generation();

  json bad = reshaped;
  bad["ports"][0]["classes"][2]["parent"] = "nosuch";
  auto refused = manager.merge_patch({{"qos", bad}}, false, std::nullopt);
  EXPECT_EQ(refused.http_status, 422);
  ASSERT_FALSE(refused.details.empty());
  EXPECT_EQ(refused.details[0].path, "/qos/ports/0/classes/2/parent");
  EXPECT_EQ(manager.generation(), generation);
  EXPECT_EQ(qos_classes(*dp, "b")["classes"].size(), 3u);

  auto removed = manager.merge_patch({{"qos", nullptr}}, false, std::nullopt);
  ASSERT_EQ(removed.http_status, 200) << removed.to_json().dump();
  auto rest = collect(b.tx[0], kFrames - early.size(), dp.get(), 5000ms);
  dp->stop_workers();
  early.insert(early.end(), rest.begin(), rest.end());
  ASSERT_EQ(early.size(), kFrames);
  EXPECT_EQ(early, sent);
  EXPECT_EQ(dp->port_totals(*dp->port_id("b")).drops_total(), 0u);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

// Two workers forward to one shaped port: the worker that does not own the
// port's tree hands its packets over through the ring, and everything leaves
// by the owner's TX queue, each source flow in order.
TEST(Pipeline, QosTreeOnTwoWorkersRunsOnTheOwner) {
  RingPort a = make_ring_port("a", 16384, 2, 3), b = make_ring_port("b", 16384, 2, 3);
  json doc = config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}));
  doc["dataplane"]["lcores"] = {0, 1, 2};
  doc["qos"] = {{"ports", {{{"port", "b"}, {"default_class", "all"},
                            {"classes", {{{"id", "root"}, {"rate", "10gbit"}},
                                         {{"id", "all"}, {"parent", "root"}, {"rate", "10gbit"},
                                          {"limit_packets", 5000}}}}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  const unsigned owner = *dp->port_id("b") % 2;
  constexpr uint32_t kPerQueue = 1000;
  for (uint32_t i = 0; i < kPerQueue; ++i) {
    ASSERT_EQ(rte_ring_enqueue(a.rxs[0], to_mbuf(udp_frame(7000, 0, 100, i))), 0);
    ASSERT_EQ(rte_ring_enqueue(a.rxs[1], to_mbuf(udp_frame(7001, 0, 100, i))), 0);
  }
  ASSERT_EQ(dp->start_workers(), "");
  auto out = collect(b.txs[owner], 2 * kPerQueue, dp.get(), 20000ms);
  dp->stop_workers();
  ASSERT_EQ(out.size(), 2 * kPerQueue);
  EXPECT_EQ(rte_ring_count(b.txs[1 - owner]), 0u);
  uint32_t next[2] = {0, 0};
  for (const auto& f : out) {
    const unsigned flow = f[37] == (7001 & 0xff) ? 1 : 0;
    ASSERT_EQ(f, udp_frame(flow ? 7001 : 7000, 0, 100, next[flow]));
    ++next[flow];
  }
  const auto totals = dp->port_totals(*dp->port_id("b"));
  EXPECT_EQ(totals.tx_packets, 2 * kPerQueue);
  EXPECT_EQ(totals.drops_total(), 0u);
  EXPECT_EQ(class_named(qos_classes(*dp, "b"), "all")["stats"]["packets"], 2 * kPerQueue);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

// The control lcore's frames take the one egress path: to a shaped port
// they are handed to the worker that owns its tree, classified like any
// packet and released by it; a timestamped frame (a PTP event message)
// leaves at once on the control queue, ahead of the tree. With the workers
// stopped, no tree runs: the control lcore's frames leave on its queue.
// Head-end replicas on a shaped underlay: a copy (one buffer, the default
// for frames up to replica_copy_max_bytes) is classified by its inner
// frame; a replica that shares its payload (here replica_copy_max_bytes 0)
// has only its outer headers in its first segment, which is all the
// classifier reads: inner rules miss it and it takes the default class
// (docs/qos.md, "Classification").
TEST(Pipeline, QosClassifiesCopiedReplicasByTheirInnerFrame) {
  for (const unsigned copy_max : {2048u, 0u}) {
    SCOPED_TRACE(copy_max);
    RingPort acc = make_ring_port("acc"), ul = make_ring_port("ul");
    json doc = config_for({acc, ul}, json::array());
    doc["vxlan"] = {{"vtep", {{"interfaces", {{{"port", "ul"}, {"ipv4", "10.1.0.1/24"}}}},
                              {"neighbors", {{{"ip", "10.1.0.2"}, {"mac", "02:00:00:00:01:02"}},
                                             {{"ip", "10.1.0.3"}, {"mac", "02:00:00:00:01:03"}}}},
                              {"replica_copy_max_bytes", copy_max}}},
                    {"bridge_domains", {{{"vni", 100}, {"attachments", {{{"port", "acc"}}}},
                                         {"flood", {"10.1.0.2", "10.1.0.3"}}}}}};
    doc["qos"] = {{"ports", {{{"port", "ul"}, {"default_class", "bulk"},
                              {"classes", {{{"id", "root"}, {"rate", "1gbit"}},
                                           {{"id", "media"}, {"parent", "root"}, {"rate", "500mbit"}},
                                           {{"id", "bulk"}, {"parent", "root"}, {"rate", "500mbit"}}}},
                              {"rules", {{{"class", "media"}, {"vni", 100},
                                          {"inner", {{"protocol", "udp"}, {"dst_ports", "5004"}}}}}}}}}};
    auto dp = make_dataplane(doc);
    ASSERT_TRUE(dp);
    ASSERT_EQ(dp->start_workers(), "");
    auto flooded = [](uint16_t port, uint32_t seq) {  // broadcast: flooded to both VTEPs
      auto f = udp_frame(port, 0, 300, seq);
      std::fill(f.begin(), f.begin() + 6, 0xff);
      return f;
    };
    inject(acc, {flooded(5004, 1), flooded(5004, 2), flooded(6000, 3)});
    auto replicas = take(ul.tx[0], 6, dp.get());
    dp->stop_workers();
    ASSERT_EQ(replicas.size(), 6u);
    for (rte_mbuf* r : replicas) {
      EXPECT_EQ(r->nb_segs, copy_max ? 1 : 2);
      rte_pktmbuf_free(r);
    }
    const json classes = qos_classes(*dp, "ul");
    EXPECT_EQ(class_named(classes, "media")["stats"]["packets"], copy_max ? 4u : 0u);
    EXPECT_EQ(class_named(classes, "bulk")["stats"]["packets"], copy_max ? 2u : 6u);
  }
}

// A flood's local replicas are clones sharing one buffer. A class that
// remarks on one port must rewrite its own copy only: the attachment on an
// unshaped port still gets the frame as it arrived.
TEST(Pipeline, QosRemarksACloneReplicaWithoutTouchingItsSiblings) {
  RingPort in = make_ring_port("in"), shaped = make_ring_port("shaped"), plain = make_ring_port("plain");
  json doc = config_for({in, shaped, plain}, json::array());
  doc["vxlan"] = {{"bridge_domains", {{{"vni", 100},
                                       {"attachments", {{{"port", "in"}}, {{"port", "shaped"}}, {{"port", "plain"}}}}}}}};
  doc["qos"] = {{"ports", {{{"port", "shaped"}, {"default_class", "media"},
                            {"classes", {{{"id", "root"}, {"rate", "1gbit"}},
                                         {{"id", "media"}, {"parent", "root"}, {"rate", "1gbit"}, {"dscp_remark", 46}}}}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->start_workers(), "");
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t seq = 0; seq < 8; ++seq) {
    auto f = udp_frame(5004, 0, 300, seq);
    std::fill(f.begin(), f.begin() + 6, 0xff);  // broadcast: a replica for each other attachment
    frames.push_back(f);
  }
  inject(in, frames);
  // The remarked ones first: every rewrite has happened once they are out.
  auto remarked = collect(shaped.tx[0], frames.size(), dp.get());
  auto unchanged = collect(plain.tx[0], frames.size(), dp.get());
  dp->stop_workers();
  ASSERT_EQ(remarked.size(), frames.size());
  ASSERT_EQ(unchanged.size(), frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(unchanged[i], frames[i]) << "replica " << i << " on the unshaped port";
    EXPECT_EQ(remarked[i][15], 46 << 2);
    EXPECT_TRUE(net::ipv4_header_checksum_ok(&remarked[i][14], 20));
    EXPECT_TRUE(std::equal(remarked[i].begin() + 34, remarked[i].end(), frames[i].begin() + 34)) << "payload intact";
  }
  dp.reset();
  free_ring_port(in);
  free_ring_port(shaped);
  free_ring_port(plain);
}

TEST(Pipeline, QosShapesTheControlLcoresFramesButNotTimestampedOnes) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  json doc = config_for({a, b}, json::array());
  doc["qos"] = {{"ports", {{{"port", "b"}, {"default_class", "bulk"},
                            {"classes", {{{"id", "root"}, {"rate", "1gbit"}},
                                         {{"id", "gold"}, {"parent", "root"}, {"rate", "500mbit"}},
                                         {{"id", "bulk"}, {"parent", "root"}, {"rate", "500mbit"}}}},
                            {"rules", {{{"class", "gold"}, {"dscp", json::array({46})}}}}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  const uint16_t port_b = *dp->port_id("b");
  ASSERT_EQ(dp->port_list()[1].control_tx_queue, 1);
  ASSERT_EQ(dp->start_workers(), "");
  rte_mbuf* gold[3];
  for (uint32_t i = 0; i < 3; ++i) gold[i] = to_mbuf(udp_frame(7000, 46 << 2, 100, i));
  EXPECT_EQ(dp->control_transmit(port_b, gold, 3), 3);  // handed to the owner
  EXPECT_TRUE(dp->control_send(port_b, udp_frame(7001, 0, 100, 3)));
  rte_mbuf* event = to_mbuf(udp_frame(319, 0, 100, 4));
  EXPECT_EQ(dp->control_transmit(port_b, &event, 1, dataplane::EgressTiming::kTimestamped), 1);
  auto shaped = collect(b.tx[0], 4, dp.get());
  auto now = collect(b.tx[1], 1);
  dp->stop_workers();
  ASSERT_EQ(shaped.size(), 4u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(shaped[i], udp_frame(7000, 46 << 2, 100, i));
  EXPECT_EQ(shaped[3], udp_frame(7001, 0, 100, 3));
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0], udp_frame(319, 0, 100, 4));
  const json classes = qos_classes(*dp, "b");
  EXPECT_EQ(class_named(classes, "gold")["stats"]["packets"], 3u);
  EXPECT_EQ(class_named(classes, "bulk")["stats"]["packets"], 1u);

  EXPECT_TRUE(dp->control_send(port_b, udp_frame(7001, 0, 100, 5)));  // workers stopped
  auto after = collect(b.tx[1], 1);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0], udp_frame(7001, 0, 100, 5));
  EXPECT_EQ(rte_ring_count(b.tx[0]), 0u);
  const auto totals = dp->port_totals(port_b);
  EXPECT_EQ(totals.tx_packets, 6u);  // counted once each: by the owner, or on the control lane
  EXPECT_EQ(totals.drops_total(), 0u);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

}  // namespace
