// Pipeline tests: an in-process EAL (--no-huge) running the real worker loop
// on lcore 1 over net_ring and net_pcap ports. Packets in, packets out,
// compared byte for byte; every packet not delivered must be counted.
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
#include "ptp/nic_clock.h"
#include "test/pipeline/fixture.h"
#include "vxlan/bridge_domain.h"
#include "vxlan/control.h"

using namespace meridian;
using namespace meridian::pipeline_test;

namespace {

TEST(Pipeline, XconnectForwardsBothWaysByteForByte) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  auto dp = make_dataplane(config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}})));
  ASSERT_TRUE(dp);
  std::vector<std::vector<uint8_t>> ab, ba;
  std::mt19937 rng(7);
  for (uint32_t i = 0; i < 300; ++i) ab.push_back(frame(i, 60 + rng() % 1455));
  for (uint32_t i = 0; i < 150; ++i) ba.push_back(frame(100000 + i, i % 2 ? 60 : 1514));
  inject(a, ab);
  inject(b, ba);
  ASSERT_EQ(dp->start_workers(), "");
  auto got_b = collect(b.tx[0], ab.size());
  auto got_a = collect(a.tx[0], ba.size());
  dp->stop_workers();
  EXPECT_EQ(got_b, ab);  // same bytes, same order
  EXPECT_EQ(got_a, ba);
  const auto ta = dp->port_totals(*dp->port_id("a")), tb = dp->port_totals(*dp->port_id("b"));
  EXPECT_EQ(ta.rx_packets, ab.size());
  EXPECT_EQ(tb.tx_packets, ab.size());
  EXPECT_EQ(tb.rx_packets, ba.size());
  EXPECT_EQ(ta.tx_packets, ba.size());
  uint64_t ab_bytes = 0;
  for (const auto& f : ab) ab_bytes += f.size();
  EXPECT_EQ(ta.rx_bytes, ab_bytes);
  EXPECT_EQ(tb.tx_bytes, ab_bytes);
  EXPECT_EQ(ta.drops_total() + tb.drops_total(), 0u);
  EXPECT_EQ(rte_mempool_avail_count(dp->mempool()), dp->mempool()->size);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

TEST(Pipeline, RuntimeCountsEveryBurstAndTimesTheActiveStagesOnSampledBursts) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  // A punt EtherType makes the punt classifier active; VXLAN and PTP have
  // nothing configured, so their stages are out of the pipeline.
  auto dp = make_dataplane(config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}), json::array({"0x88cc"})));
  ASSERT_TRUE(dp);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 6400; ++i) frames.push_back(frame(i, 64));
  inject(a, frames);
  ASSERT_EQ(dp->start_workers(), "");
  ASSERT_EQ(collect(b.tx[0], frames.size()).size(), frames.size());
  dp->stop_workers();
  const json rt = dp->stats()["runtime"];
  EXPECT_EQ(rt["packets"], frames.size());
  const uint64_t bursts = rt["bursts"];
  EXPECT_GE(bursts, frames.size() / 32);  // bursts of at most burst_size (32)
  ASSERT_EQ(rt["stages"].size(), dp->stage_names().size());
  const uint64_t sampled = rt["stages"][0]["sampled_bursts"];
  EXPECT_EQ(sampled, bursts / dataplane::kStageSampleEvery);  // one worker: exactly every 61st burst
  std::vector<std::string> active;
  for (size_t s = 0; s < rt["stages"].size(); ++s) {
    const json& st = rt["stages"][s];
    EXPECT_EQ(st["name"], dp->stage_names()[s]);
    if (!st["active"].get<bool>()) {
      EXPECT_EQ(st["sampled_bursts"], 0) << st["name"];  // skipped: never run, never timed
      continue;
    }
    active.push_back(st["name"]);
    EXPECT_EQ(st["sampled_bursts"], sampled);  // every active stage timed on the same bursts
    EXPECT_GT(st["sampled_packets"].get<uint64_t>(), 0u);
    EXPECT_GT(st["cycles"].get<uint64_t>(), 0u) << st["name"];
  }
  EXPECT_EQ(active, (std::vector<std::string>{"punt-classifier", "xconnect"}));
  EXPECT_EQ(rt["stages"][0]["place"], "ingress");
  EXPECT_EQ(rt["stages"].back()["place"], "egress");
  config::MetricsWriter metrics;
  dp->metrics(metrics);
  EXPECT_NE(metrics.text().find("meridian_stage_sampled_cycles_total{stage=\"xconnect\"}"), std::string::npos);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

TEST(Pipeline, DropsRuntsBeforeAnyStageWithNothingConfiguredToInspectThem) {
  // Only xconnect is active: the worker itself drops frames shorter than an
  // Ethernet header, so no stage ever reads past a runt's end.
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  auto dp = make_dataplane(config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}})));
  ASSERT_TRUE(dp);
  const auto ip = frame(3, 100);
  inject(a, {std::vector<uint8_t>(13, 0x55), ip, std::vector<uint8_t>(1, 0x55)});
  ASSERT_EQ(dp->start_workers(), "");
  auto forwarded = collect(b.tx[0], 1);
  dp->stop_workers();
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0], ip);
  const auto ta = dp->port_totals(*dp->port_id("a"));
  EXPECT_EQ(drops(ta, DropReason::kRuntFrame), 2u);
  EXPECT_EQ(ta.rx_packets, ta.forwarded + ta.punted + ta.ingress_drops());
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

TEST(Pipeline, EachModuleTableTypeHasASlotOfItsOwn) {
  struct First {
    int value = 0;
  };
  struct Second {
    int value = 0;
  };
  dataplane::ForwardingTables t;
  EXPECT_EQ(t.get<First>(), nullptr);  // never set: null, as a module that contributes nothing
  t.set<First>(std::make_shared<const First>(First{1}));
  EXPECT_EQ(t.get<Second>(), nullptr);
  t.set<const Second>(std::make_shared<const Second>(Second{2}));
  ASSERT_NE(t.get<First>(), nullptr);
  ASSERT_NE(t.get<Second>(), nullptr);  // const or not, one type, one slot
  EXPECT_EQ(t.get<First>()->value, 1);
  EXPECT_EQ(t.get<const Second>()->value, 2);
}

TEST(Pipeline, PacketMetadataIsReadOncePerPassUntilAStageRewritesTheHeaders) {
  auto f = frame(1, 64, net::kEtherPtp);
  dataplane::PacketBatch b;
  b.pkts[0] = to_mbuf(f);
  b.reset(0, 1);
  EXPECT_TRUE(b.meta(0).has(net::kMetaPtp));
  // A later stage sees what the first reader parsed, without parsing again.
  uint8_t* data = rte_pktmbuf_mtod(b.pkts[0], uint8_t*);
  net::put16(data + 12, net::kEtherArp);
  EXPECT_TRUE(b.meta(0).has(net::kMetaPtp));
  b.headers_changed(0);  // the stage that rewrote it says so
  EXPECT_TRUE(b.meta(0).has(net::kMetaArp));
  // The next burst in the same batch starts afresh.
  net::put16(data + 12, net::kEtherPtp);
  b.reset(0, 1);
  EXPECT_TRUE(b.meta(0).has(net::kMetaPtp));
  rte_pktmbuf_free(b.pkts[0]);
}

TEST(Pipeline, PuntsControlFramesAndCountsRunts) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  auto dp = make_dataplane(config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}), json::array({"0x88cc"})));
  ASSERT_TRUE(dp);
  std::vector<std::vector<uint8_t>> seen;
  dp->set_punt_handler(0x88cc, [&](rte_mbuf* m) {
    seen.push_back(bytes_of(m));
    rte_pktmbuf_free(m);
    return true;
  });
  auto lldp = frame(1, 60, 0x88cc);
  auto tagged = frame(2, 64, 0x8100);
  tagged[16] = 0x88;
  tagged[17] = 0xcc;
  auto ip = frame(3, 100);
  std::vector<uint8_t> runt(10, 0x55);
  inject(a, {lldp, tagged, ip, runt});
  ASSERT_EQ(dp->start_workers(), "");
  auto forwarded = collect(b.tx[0], 1);
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (seen.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    dp->control_tick();
    std::this_thread::sleep_for(1ms);
  }
  dp->stop_workers();
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0], ip);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], lldp);
  EXPECT_EQ(seen[1], tagged);
  const auto ta = dp->port_totals(*dp->port_id("a"));
  EXPECT_EQ(ta.punted, 2u);
  EXPECT_EQ(drops(ta, DropReason::kRuntFrame), 1u);
  EXPECT_EQ(ta.rx_packets, 4u);
  EXPECT_EQ(dp->stats()["punt_received"]["0x88cc"], 2);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

TEST(Pipeline, EveryUndeliveredPacketIsCounted) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b", 64), c = make_ring_port("c");
  auto dp = make_dataplane(config_for({a, b, c}, json::array({{{"a", "a"}, {"b", "b"}}})));
  ASSERT_TRUE(dp);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 500; ++i) frames.push_back(frame(i, 128));
  inject(a, frames);                          // b's TX ring holds only 63: the rest must be tx_full
  inject(c, {frame(9, 64), frame(10, 64)});   // c is not cross-connected
  ASSERT_EQ(dp->start_workers(), "");
  std::this_thread::sleep_for(300ms);
  dp->stop_workers();
  const auto ta = dp->port_totals(*dp->port_id("a")), tb = dp->port_totals(*dp->port_id("b")),
             tc = dp->port_totals(*dp->port_id("c"));
  EXPECT_EQ(ta.rx_packets, 500u);
  EXPECT_EQ(tb.tx_packets, rte_ring_count(b.tx[0]));
  EXPECT_EQ(tb.tx_packets, 63u);
  EXPECT_EQ(drops(tb, DropReason::kTxFull), 500u - 63u);
  EXPECT_EQ(ta.rx_packets, tb.tx_packets + drops(tb, DropReason::kTxFull));  // conservation
  EXPECT_EQ(drops(tc, DropReason::kNoForwarding), 2u);
  auto stats = dp->stats();
  EXPECT_EQ(stats["ports"][1]["drops"]["tx_full"], 437);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
  free_ring_port(c);
}

TEST(Pipeline, ConfigChangesUnderTrafficLoseNothingOfUnchangedObjects) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b"), c = make_ring_port("c"), d = make_ring_port("d");
  const json stable = {{"a", "a"}, {"b", "b"}};
  json doc = config_for({a, b, c, d}, json::array({stable}));
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  config::ConfigManager manager(*config::parse_config(doc).config, "", 1);
  manager.set_backend(dp.get());
  ASSERT_EQ(dp->start_workers(), "");

  constexpr uint32_t kFrames = 20000;
  std::atomic<bool> feeding{true};
  std::thread feeder([&] {
    for (uint32_t i = 0; i < kFrames; ++i) {
      rte_mbuf* m = to_mbuf(frame(i, 64 + i % 200));
      while (rte_ring_enqueue(a.rx, m) != 0) std::this_thread::yield();
    }
    feeding = false;
  });
  std::vector<std::vector<uint8_t>> received;
  std::thread drainer([&] { received = collect(b.tx[0], kFrames, nullptr, 30000ms); });

  // Churn the config of *other* objects while a<->b carries traffic.
  unsigned applied = 0;
  for (int round = 0; feeding || round < 50; ++round) {
    json patch = round % 2 ? json{{"xconnect", json::array({stable})}, {"punt", {{"ethertypes", json::array()}}}}
                           : json{{"xconnect", json::array({stable, {{"a", "c"}, {"b", "d"}}})},
                                  {"punt", {{"ethertypes", json::array({"0x88b5"})}}}};
    auto out = manager.merge_patch(patch, false, std::nullopt);
    ASSERT_EQ(out.http_status, 200) << out.to_json().dump();
    applied += out.changed;
    dp->control_tick();  // reclaims retired table versions
    std::this_thread::sleep_for(200us);
    if (round > 100000) break;
  }
  feeder.join();
  drainer.join();
  dp->stop_workers();
  dp->control_tick();

  EXPECT_GE(applied, 50u);
  EXPECT_EQ(manager.generation(), 1u + applied);
  ASSERT_EQ(received.size(), kFrames);
  for (uint32_t i = 0; i < kFrames; ++i) {
    ASSERT_EQ(received[i], frame(i, 64 + i % 200)) << "frame " << i << " lost, reordered or corrupted";
  }
  const auto ta = dp->port_totals(*dp->port_id("a")), tb = dp->port_totals(*dp->port_id("b"));
  EXPECT_EQ(ta.drops_total() + tb.drops_total(), 0u);
  EXPECT_EQ(dp->retired_tables(), 0u);  // every old version was reclaimed
  dp.reset();
  for (auto* p : {&a, &b, &c, &d}) free_ring_port(*p);
}

TEST(Pipeline, TwoWorkersOwnTheirQueuesAndKeepPerQueueOrder) {
  // Two RX queues per port; three TX queues (worker 0, worker 1, control).
  RingPort a = make_ring_port("a", 16384, 2, 3), b = make_ring_port("b", 16384, 2, 3);
  json doc = config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}));
  doc["dataplane"]["lcores"] = {0, 1, 2};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->worker_contexts().size(), 2u);
  EXPECT_EQ(dp->port_list()[1].control_tx_queue, 2);
  constexpr uint32_t kPerQueue = 2000;
  for (uint32_t i = 0; i < kPerQueue; ++i) {
    ASSERT_EQ(rte_ring_enqueue(a.rxs[0], to_mbuf(frame(i, 64))), 0);
    ASSERT_EQ(rte_ring_enqueue(a.rxs[1], to_mbuf(frame(500000 + i, 70))), 0);
  }
  ASSERT_EQ(dp->start_workers(), "");
  // Worker w polls RX queue w and transmits on TX queue w: each flow comes
  // out whole and in order on its own worker's queue, nothing on control's.
  auto out0 = collect(b.txs[0], kPerQueue, nullptr, 20000ms);
  auto out1 = collect(b.txs[1], kPerQueue, nullptr, 20000ms);
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    ready = dp->health().ready;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(ready);
  dp->stop_workers();
  ASSERT_EQ(out0.size(), kPerQueue);
  ASSERT_EQ(out1.size(), kPerQueue);
  for (uint32_t i = 0; i < kPerQueue; ++i) {
    ASSERT_EQ(out0[i], frame(i, 64));
    ASSERT_EQ(out1[i], frame(500000 + i, 70));
  }
  EXPECT_EQ(rte_ring_count(b.txs[2]), 0u);
  EXPECT_EQ(dp->port_totals(*dp->port_id("b")).tx_packets, 2 * kPerQueue);
  auto stats = dp->stats();
  EXPECT_EQ(stats["workers"].size(), 2u);
  EXPECT_EQ(stats["workers"][1]["tx_queue"], 1);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

TEST(Pipeline, StartupFailuresNameTheFieldAndReleaseEverything) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  auto fails = [](json doc, const std::string& expect) {
    auto parsed = config::parse_config(doc);
    ASSERT_TRUE(parsed.config);
    std::string error;
    EXPECT_FALSE(dataplane::Dataplane::create(*parsed.config, error));
    EXPECT_NE(error.find(expect), std::string::npos) << error;
  };
  json doc = config_for({a, b}, json::array());
  json few = doc;
  few["dataplane"]["mbufs"] = 1024;
  fails(few, "/dataplane/mbufs");
  json missing = doc;
  missing["ports"][1]["devargs"] = "net_nosuchdriver0";
  fails(missing, "/ports/1 (b): cannot probe device");
  json one_tx = doc;  // two workers need two TX queues; port c offers one
  RingPort c = make_ring_port("c", 16384, 1, 1);
  one_tx["ports"][1]["devargs"] = c.ethdev;
  one_tx["dataplane"]["lcores"] = {0, 1, 2};
  fails(one_tx, "TX queues (one per worker)");
  json bad_lcore = doc;
  bad_lcore["dataplane"]["lcores"] = {0, 5};
  fails(bad_lcore, "/dataplane/lcores");
  // Nothing leaked or left configured: the same ports start fine afterwards.
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->start_workers(), "");
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
  free_ring_port(c);
}

TEST(Pipeline, ControlLcoreTransmitsOnItsOwnQueue) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  auto dp = make_dataplane(config_for({a, b}, json::array()));
  ASSERT_TRUE(dp);
  ASSERT_EQ(dp->port_list()[1].control_tx_queue, 1);
  rte_mbuf* pkts[3] = {to_mbuf(frame(1, 60)), to_mbuf(frame(2, 61)), to_mbuf(frame(3, 62))};
  EXPECT_EQ(dp->control_transmit(*dp->port_id("b"), pkts, 3), 3);
  auto got = collect(b.tx[1], 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2], frame(3, 62));
  EXPECT_EQ(rte_ring_count(b.tx[0]), 0u);  // never the workers' queue
  EXPECT_EQ(dp->port_totals(*dp->port_id("b")).tx_packets, 3u);
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

TEST(Pipeline, ReadinessFollowsWorkerHeartbeats) {
  RingPort a = make_ring_port("a");
  auto dp = make_dataplane(config_for({a}, json::array()));
  ASSERT_TRUE(dp);
  EXPECT_FALSE(dp->health().ready);
  ASSERT_EQ(dp->start_workers(), "");
  bool ready = false;
  for (int i = 0; i < 200 && !ready; ++i) {
    std::this_thread::sleep_for(10ms);
    ready = dp->health().ready;
  }
  EXPECT_TRUE(ready);
  dp->stop_workers();
  EXPECT_FALSE(dp->health().ready);
  dp.reset();
  free_ring_port(a);
}

TEST(Pipeline, RestartOnlyChangesAreRefused) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  json doc = config_for({a, b}, json::array());
  auto running = *config::parse_config(doc).config;
  auto next = running;
  next.ports[0].mtu = 9000;
  next.ports[1].promiscuous = false;  // live
  next.dataplane.burst_size = 16;
  auto errors = dataplane::restart_only_changes(running, next);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].path, "/dataplane/burst_size");
  EXPECT_EQ(errors[1].path, "/ports/0/mtu");
  free_ring_port(a);
  free_ring_port(b);
}

TEST(Pipeline, PcapInPcapOut) {
  char tmpl[] = "/tmp/meridian-pcap-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 64; ++i) frames.push_back(frame(i, 60 + i * 20));
  write_pcap(dir + "/in.pcap", frames);
  write_pcap(dir + "/empty.pcap", {});
  const int n = ++g_unique;
  json doc = {{"dataplane", {{"lcores", {0, 1}}, {"main_lcore", 0}}},
              {"ports", {{{"name", "src"}, {"devargs", "net_pcap_src" + std::to_string(n) + ",rx_pcap=" + dir + "/in.pcap,tx_pcap=" + dir + "/src-out.pcap"}},
                         {{"name", "dst"}, {"devargs", "net_pcap_dst" + std::to_string(n) + ",rx_pcap=" + dir + "/empty.pcap,tx_pcap=" + dir + "/out.pcap"}}}},
              {"xconnect", {{{"a", "src"}, {"b", "dst"}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  EXPECT_TRUE(dp->port_list()[0].hotplugged);
  ASSERT_EQ(dp->start_workers(), "");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (dp->port_totals(*dp->port_id("dst")).tx_packets < frames.size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  dp->stop_workers();
  dp.reset();  // closing the port flushes the capture
  EXPECT_EQ(read_pcap(dir + "/out.pcap"), frames);
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new EalEnvironment);
  return RUN_ALL_TESTS();
}
