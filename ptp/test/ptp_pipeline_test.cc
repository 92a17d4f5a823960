// PTP pipeline tests: the punt stage, the transparent clock and hardware
// timestamps through the real worker loop (shared fixture in
// test/pipeline/fixture.h).
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
#include "ptp/drop_reasons.h"
#include "ptp/module.h"
#include "ptp/nic_clock.h"
#include "test/pipeline/fixture.h"

using namespace meridian;
using namespace meridian::pipeline_test;

namespace {

// The software side runs here: ring ports have no PTP clock, so "hardware"
// is refused at its path, at startup and as a live change, and "auto"
// settles for another source and says why. The hardware path itself needs a
// NIC this machine lacks: NicClockOnARealNic reports it skipped (ctest
// lists it as not run) unless MERIDIAN_PTP_HW_DEVARGS names one.

json ptp_port_config(const RingPort& p, const std::string& timestamping) {
  json doc = config_for({p}, json::array());
  doc["ptp"] = {{"ports", {{{"port", p.name}, {"transport", "l2"}, {"timestamping", timestamping}}}}};
  return doc;
}

json ptp_status(dataplane::Dataplane& dp) {
  auto r = dp.resource(config::http::verb::get, "/api/v1/ptp", {});
  EXPECT_TRUE(r && r->status == config::http::status::ok);
  return r ? r->body : json{};
}

/// An L2 PTP message (header + zeroed body) from clock 02..01 port 1;
/// two-step flag on; a Delay_Resp names clock 02..02 port 1 as requester.
std::vector<uint8_t> l2_ptp(uint8_t type, uint16_t sequence) {
  const size_t body = type == 0x9 ? 20 : 10;
  std::vector<uint8_t> f = {0x01, 0x1b, 0x19, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xf7};
  std::vector<uint8_t> ptp(34 + body, 0);
  ptp[0] = type;
  ptp[1] = 2;
  ptp[3] = static_cast<uint8_t>(ptp.size());
  ptp[6] = 0x02;  // twoStepFlag
  const bool from_slave = type == 0x1;
  ptp[20] = 0x02;
  ptp[27] = from_slave ? 2 : 1;
  ptp[29] = 1;
  ptp[30] = static_cast<uint8_t>(sequence >> 8);
  ptp[31] = static_cast<uint8_t>(sequence);
  if (type == 0x9) {
    ptp[34 + 10] = 0x02;
    ptp[34 + 17] = 2;
    ptp[34 + 19] = 1;
  }
  f.insert(f.end(), ptp.begin(), ptp.end());
  return f;
}

int64_t correction_ns(const std::vector<uint8_t>& f) {
  int64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | f[14 + 8 + i];
  return v >> 16;
}

// The transparent clock's two-step pairs when both messages arrive in one
// burst (injected before the workers start): the event message is parked
// before its Follow_Up / Delay_Resp is looked at, the pair keeps its order,
// and ring ports (no kernel interface) leave the sends to the worker.
TEST(PtpTransparent, TwoStepPairsInOneBurstAreMatchedInOrder) {
  RingPort a = make_ring_port("a"), b = make_ring_port("b");
  json doc = config_for({a, b}, json::array({{{"a", "a"}, {"b", "b"}}}));
  doc["dataplane"]["idle_sleep_us"] = 0;
  doc["ptp"] = {{"transparent_clock", true}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  const std::vector<std::vector<uint8_t>> in = {l2_ptp(0x0, 5), l2_ptp(0x8, 5), l2_ptp(0x1, 6), l2_ptp(0x9, 6)};
  inject(a, in);
  ASSERT_EQ(dp->start_workers(), "");
  auto got = collect(b.tx[0], in.size());
  dp->stop_workers();
  ASSERT_EQ(got.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(got[i][14], in[i][14]) << "order, at " << i;
  EXPECT_EQ(correction_ns(got[0]), 0);   // the Sync itself: two-step, untouched
  EXPECT_GT(correction_ns(got[1]), 0);   // its Follow_Up carries the residence
  EXPECT_EQ(correction_ns(got[2]), 0);
  EXPECT_GT(correction_ns(got[3]), 0);   // the Delay_Resp carries the Delay_Req's
  const json tc = ptp_status(*dp)["transparent_clock"];
  EXPECT_EQ(tc["follow_ups_corrected"], 1) << tc;
  EXPECT_EQ(tc["delay_resps_corrected"], 1) << tc;
  EXPECT_EQ(tc["follow_ups_unmatched"], 0) << tc;
  EXPECT_EQ(tc["delay_resps_unmatched"], 0) << tc;
  EXPECT_EQ(tc["egress_sent"], 0) << tc;  // net_ring has no interface to send through
  EXPECT_EQ(tc["tsc_ingress"], 2) << tc;
  EXPECT_EQ(tc["stage_egress"], 2) << tc;
  dp.reset();
  free_ring_port(a);
  free_ring_port(b);
}

// The egress stage's send skips the worker's queue, so it must not let a
// Sync overtake an earlier PTP frame (its predecessor's Follow_Up) of the
// same burst to the same port. Other ports, other traffic and dropped
// frames do not hold it back.
TEST(PtpTransparent, EgressSendsNeverOvertakeAnEarlierPtpFrameToTheSamePort) {
  dataplane::PacketBatch b;
  b.reset(0, 6);
  b.forward(0, 1);         // data to port 1
  b.forward(1, 2);         // PTP to port 2
  b.drop(2, DropReason::kNoDecision);  // PTP, dropped
  b.forward(3, 1);         // the event message, to port 1
  b.forward(4, 1);         // PTP to port 1, after it
  b.forward(5, 1);         // an event message behind 4
  const uint64_t ptp = 0b111110;
  EXPECT_FALSE(ptp::PtpTransparentEgressStage::behind_earlier_ptp(b, ptp, 3));  // 0 is not PTP; 1 another port; 2 dropped
  EXPECT_TRUE(ptp::PtpTransparentEgressStage::behind_earlier_ptp(b, ptp, 5));   // 3 and 4 go to port 1 first
  EXPECT_TRUE(ptp::PtpTransparentEgressStage::behind_earlier_ptp(b, ptp | 1, 3));  // were 0 PTP, it would hold 3
  EXPECT_FALSE(ptp::PtpTransparentEgressStage::behind_earlier_ptp(b, ptp, 1));
}

// What the PTP punt stage sends up for an IPv6 port: a solicitation for its
// address and an advertisement sent to it (the answer to its own
// solicitation for a unicast master); other neighbour traffic passes.
TEST(PtpPunt, NeighbourDiscoveryForThePortsAddressGoesUp) {
  const uint8_t ours[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  const uint8_t master[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  const uint8_t other[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};
  const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 0x10}, master_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  auto goes_up = [&](const uint8_t* frame, size_t len) {
    net::PacketView v;
    EXPECT_EQ(net::parse_packet(frame, len, v), net::ParseStatus::kOk);
    return ptp::PtpPuntStage::neighbor_message({frame, len}, v, 6, ours);
  };
  uint8_t f[net::kNdFrame];
  EXPECT_TRUE(goes_up(f, net::build_ns(f, master_mac, master, ours)));   // the master resolving us
  EXPECT_FALSE(goes_up(f, net::build_ns(f, master_mac, master, other)));
  EXPECT_TRUE(goes_up(f, net::build_na(f, our_mac, master_mac, master, ours, true)));   // the master's answer to us
  EXPECT_FALSE(goes_up(f, net::build_na(f, our_mac, master_mac, master, other, true)));
  EXPECT_FALSE(goes_up(f, net::build_ns(f, our_mac, ours, master)));  // our own solicitation, seen again
}

// The service's side: a duplicate-address probe for the port's address
// (from ::) is defended with an unsolicited advertisement to all nodes; an
// advertisement from a node that is no unicast master is not learnt.
TEST(PtpPunt, DuplicateAddressProbesAreDefendedToAllNodes) {
  RingPort a = make_ring_port("a");
  json doc = config_for({a}, json::array());
  doc["dataplane"]["idle_sleep_us"] = 0;
  doc["ptp"] = {{"ports", {{{"port", "a"}, {"transport", "udp_ipv6"}, {"address", "fd77::10"}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  const uint8_t ours[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  const uint8_t other[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};
  const uint8_t unspecified[16] = {};
  const uint8_t their_mac[6] = {0x02, 0, 0, 0, 0, 0x99}, any_mac[6] = {0x02, 0, 0, 0, 0, 0x10};
  std::vector<uint8_t> probe(net::kNdFrame), stranger(net::kNdFrame);
  probe.resize(net::build_ns(probe.data(), their_mac, unspecified, ours));
  stranger.resize(net::build_na(stranger.data(), any_mac, their_mac, other, ours, true));
  inject(a, {probe, stranger});
  ASSERT_EQ(dp->start_workers(), "");
  auto sent = collect(a.tx[1], 1, dp.get());
  dp->stop_workers();
  ASSERT_EQ(sent.size(), 1u);
  const auto& na = sent[0];
  net::PacketView v;
  ASSERT_EQ(net::parse_packet(na.data(), na.size(), v), net::ParseStatus::kOk);
  net::NdView nd;
  ASSERT_TRUE(net::parse_nd(na.data() + v.l3_offset, na.size() - v.l3_offset, nd));
  EXPECT_EQ(nd.type, 136);
  EXPECT_FALSE(nd.solicited);
  EXPECT_EQ(std::vector<uint8_t>(na.begin(), na.begin() + 6), (std::vector<uint8_t>{0x33, 0x33, 0, 0, 0, 1}));
  EXPECT_EQ(nd.dst_ip[0], 0xff);
  EXPECT_EQ(nd.dst_ip[1], 0x02);
  EXPECT_EQ(nd.dst_ip[15], 1);
  EXPECT_EQ(std::memcmp(nd.target, ours, 16), 0);
  const json status = ptp_status(*dp);
  EXPECT_EQ(status["neighbor_replies"], 1) << status;
  EXPECT_EQ(status["neighbor_answers"], 0) << status;  // the stranger's advertisement was not taken
  dp.reset();
  free_ring_port(a);
}

// On a port with a QoS tree, PTP's event messages leave at once on the
// control queue (their transmit time is taken as they are sent), while its
// other frames take the tree like any traffic: here the defence of its
// address against a duplicate-address probe, released by the owner worker.
TEST(PtpPunt, EventMessagesGoAheadOfTheQosTreeOtherFramesThroughIt) {
  RingPort a = make_ring_port("a");
  json doc = config_for({a}, json::array());
  doc["dataplane"]["idle_sleep_us"] = 0;
  doc["ptp"] = {{"ports", {{{"port", "a"}, {"transport", "udp_ipv6"}, {"address", "fd77::10"},
                            {"delay_mechanism", "p2p"}}}}};
  doc["qos"] = {{"ports", {{{"port", "a"}, {"default_class", "all"},
                            {"classes", {{{"id", "root"}, {"rate", "1gbit"}},
                                         {{"id", "all"}, {"parent", "root"}, {"rate", "1gbit"}}}}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  const uint8_t ours[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  const uint8_t unspecified[16] = {};
  const uint8_t their_mac[6] = {0x02, 0, 0, 0, 0, 0x99};
  std::vector<uint8_t> probe(net::kNdFrame);
  probe.resize(net::build_ns(probe.data(), their_mac, unspecified, ours));
  inject(a, {probe});
  ASSERT_EQ(dp->start_workers(), "");
  auto defended = collect(a.tx[0], 1, dp.get());  // the worker's queue: released by the tree
  auto control = collect(a.tx[1], 1, dp.get(), 3000ms);  // Pdelay_Req, at most a second after start
  dp->stop_workers();
  ASSERT_EQ(defended.size(), 1u);
  net::PacketView v;
  ASSERT_EQ(net::parse_packet(defended[0].data(), defended[0].size(), v), net::ParseStatus::kOk);
  net::NdView nd;
  ASSERT_TRUE(net::parse_nd(defended[0].data() + v.l3_offset, defended[0].size() - v.l3_offset, nd));
  EXPECT_EQ(nd.type, 136);
  ASSERT_EQ(control.size(), 1u);
  ASSERT_EQ(net::parse_packet(control[0].data(), control[0].size(), v), net::ParseStatus::kOk);
  ASSERT_GT(control[0].size(), size_t{v.l4_offset} + 8);
  EXPECT_EQ(control[0][v.l4_offset + 8] & 0x0f, 0x2);  // Pdelay_Req, UDP to port 319
  const auto t = dp->port_totals(*dp->port_id("a"));
  EXPECT_GE(t.tx_packets, 2u);
  EXPECT_EQ(t.drops_total(), 0u);
  dp.reset();
  free_ring_port(a);
}

// Frames the PTP service refuses after the punt are counted on their port
// under PTP's own drop reasons (after_punt: the frame was counted as
// punted) and, as before, in the PTP view by decode error.
TEST(PtpPunt, RefusedFramesAreCountedOnTheirPortUnderPtpsReasons) {
  RingPort a = make_ring_port("a");
  json doc = ptp_port_config(a, "tsc");
  doc["dataplane"]["idle_sleep_us"] = 0;
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  auto bad_time = l2_ptp(0x0, 1);  // a Sync whose nanoseconds field is >= 1e9
  for (int i = 0; i < 4; ++i) bad_time[14 + 34 + 6 + i] = 0xff;
  auto multicast_sender = l2_ptp(0x0, 2);
  multicast_sender[6] |= 1;
  inject(a, {bad_time, multicast_sender});
  ASSERT_EQ(dp->start_workers(), "");
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  json refused;
  while (std::chrono::steady_clock::now() < deadline) {
    dp->control_tick();
    refused = ptp_status(*dp)["drops"];
    if (refused.size() >= 2) break;
    std::this_thread::sleep_for(1ms);
  }
  dp->stop_workers();
  EXPECT_EQ(refused, (json{{"bad_source_mac", 1}, {"bad_timestamp", 1}}));
  const auto t = dp->port_totals(*dp->port_id("a"));
  EXPECT_EQ(drops(t, ptp::Drop::kMalformed), 1u);
  EXPECT_EQ(drops(t, ptp::Drop::kBadSourceMac), 1u);
  EXPECT_EQ(t.punted, 2u);
  EXPECT_EQ(t.rx_packets, t.forwarded + t.punted + t.ingress_drops());
  EXPECT_EQ(dp->stats()["ports"][0]["drops"]["ptp_malformed"], 1);
  dp.reset();
  free_ring_port(a);
}

TEST(PtpHardware, PortsWithoutAPtpClockRefuseHardwareAtItsPath) {
  RingPort refused = make_ring_port("a"), a = make_ring_port("a");
  {
    // (A failed startup releases its ports, so this one gets its own.)
    auto parsed = config::parse_config(ptp_port_config(refused, "hardware"));
    ASSERT_TRUE(parsed.config);
    std::string error;
    EXPECT_FALSE(dataplane::Dataplane::create(*parsed.config, error));
    EXPECT_NE(error.find("/ptp/ports/0/timestamping"), std::string::npos) << error;
    EXPECT_NE(error.find("rte_eth_timesync_enable returned -95"), std::string::npos) << error;
  }
  auto running = config::parse_config(ptp_port_config(a, "auto"));
  ASSERT_TRUE(running.config);
  std::string error;
  auto dp = dataplane::Dataplane::create(*running.config, error);
  ASSERT_TRUE(dp) << error;
  json status = ptp_status(*dp);
  EXPECT_EQ(status["clock_base"], "tsc");
  EXPECT_EQ(status["ports"][0]["timestamping"], "tsc");
  EXPECT_EQ(status["ports"][0]["hardware_timestamping"].get<std::string>().rfind("unavailable: rte_eth_timesync_enable returned -95", 0), 0u)
      << status["ports"][0];
  EXPECT_FALSE(status["ports"][0].contains("hardware_timestamps"));
  // The same request as a live change: refused at the path, nothing applied.
  auto next = config::parse_config(ptp_port_config(a, "hardware"));
  ASSERT_TRUE(next.config);
  config::FieldErrors errors;
  EXPECT_FALSE(dp->prepare(*running.config, *next.config, errors));
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].path, "/ptp/ports/0/timestamping");
  EXPECT_EQ(ptp_status(*dp)["ports"][0]["hardware_timestamping"], status["ports"][0]["hardware_timestamping"]);
  // Asked for something else: the probe is not even made.
  auto tsc = config::parse_config(ptp_port_config(a, "tsc"));
  config::FieldErrors none;
  auto commit = dp->prepare(*running.config, *tsc.config, none);
  ASSERT_TRUE(commit) << (none.empty() ? "" : none[0].path + ": " + none[0].reason);
  commit();
  EXPECT_EQ(ptp_status(*dp)["ports"][0]["hardware_timestamping"], "not requested (timestamping: tsc)");
  dp.reset();
  free_ring_port(refused);
  free_ring_port(a);
}

TEST(PtpHardware, NicClockOnARealNic) {
  const char* hw = std::getenv("MERIDIAN_PTP_HW_DEVARGS");
  if (!hw) {
    GTEST_SKIP() << "hardware timestamp path SKIPPED (not passed): this machine has no NIC with a PTP clock "
                    "(net_af_packet, net_tap, net_ring, net_pcap, net_null and net_memif return -ENOTSUP); set "
                    "MERIDIAN_PTP_HW_DEVARGS=<PCI address> to run it";
  }
  json doc = {{"dataplane", {{"lcores", {0, 1}}, {"main_lcore", 0}, {"mbufs", 32768}}},
              {"ports", {{{"name", "hw"}, {"devargs", hw}}}},
              {"ptp", {{"ports", {{{"port", "hw"}, {"transport", "l2"}, {"timestamping", "hardware"}}}}}}};
  auto dp = make_dataplane(doc);
  ASSERT_TRUE(dp);
  // The service runs over the NIC's clock: it advances with real time, and
  // the port is stamped by it.
  json before = ptp_status(*dp);
  EXPECT_EQ(before["clock_base"], "nic:hw");
  EXPECT_EQ(before["ports"][0]["timestamping"], "hardware");
  EXPECT_EQ(before["ports"][0]["hardware_timestamping"], "in use");
  const uint16_t id = *dp->port_id("hw");
  std::string why;
  auto clock = ptp::NicClock::acquire(id, dataplane::tsc_hz(), why);  // the service's own, shared
  ASSERT_TRUE(clock) << why;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n0 = clock->now();
  std::this_thread::sleep_for(100ms);
  const int64_t n1 = clock->now();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e9;
  EXPECT_NEAR(static_cast<double>(n1 - n0), elapsed, 1e6);  // within 1 ms of 100 ms: the NIC clock runs
  EXPECT_LT(clock->cross_timestamp().bracket_ticks, dataplane::tsc_hz() / 10000);  // a read under 100 us
  EXPECT_EQ(clock->read_errors(), 0u);
  // The master port sends Announce and (two-step) Sync: each Sync's send is
  // stamped by the NIC.
  for (int i = 0; i < 1500 && ptp_status(*dp)["ports"][0]["hardware_timestamps"]["tx_used"] == 0; ++i) {
    dp->control_tick();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GT(ptp_status(*dp)["ports"][0]["hardware_timestamps"]["tx_used"].get<uint64_t>(), 0u);
  dp.reset();
}

}  // namespace
