// PtpInstance end to end on simulated time: instances with their own
// free-running bases exchange real encoded frames (encode -> bytes ->
// decode) over a link with delay and timestamp noise. Grandmaster and
// slave, E2E and P2P, two-step and one-step, management GETs, and the loss
// and return of the grandmaster.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "ptp/instance.h"

using namespace meridian::ptp;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kEpoch = int64_t{1'700'000'000} * kSecond;

ClockIdentity id(uint8_t last) { return ClockIdentity{0x02, 0, 0, 0xff, 0xfe, 0, 0, last}; }

struct Station {
  std::unique_ptr<PtpClock> clock;
  std::unique_ptr<PtpInstance> ptp;
  double rate_error = 0;  // of the base against true time
  int64_t base_offset = 0;
  bool up = true;
  uint16_t link_port = 1;     // the port on the lab's link
  int64_t rx_late_ns = 0;     // its receive stamps are this late (a PHY, a timestamp point)
  int64_t tx_early_ns = 0;    // its transmit stamps are this early
  bool multicast_deaf = false;  // hears unicast only (G.8275.2 across routers)
  int64_t base(int64_t t) const { return base_offset + t + static_cast<int64_t>(static_cast<double>(t) * rate_error); }
};

struct InFlight {
  int64_t arrive;  // true time
  size_t to;
  std::vector<uint8_t> bytes;
  PeerAddress from;
};

// Every station's link_port on one link; messages arrive after `delay_ns`.
struct Lab {
  std::vector<Station> stations;
  std::vector<InFlight> wire;
  int64_t now = 0;  // true time
  int64_t delay_ns = 25'000;
  double noise_ns = 50;
  std::mt19937_64 rng{42};
  uint64_t decode_failures = 0;

  size_t add(const InstanceConfig& c, double rate_error_ppm, int64_t clock_offset_ns) {
    Station s;
    s.rate_error = rate_error_ppm * 1e-6;
    s.base_offset = static_cast<int64_t>(stations.size()) * 7'777'777'777;
    s.clock = std::make_unique<PtpClock>();
    s.clock->set_time(s.base(now), kEpoch + now + clock_offset_ns);
    s.ptp = std::make_unique<PtpInstance>(c, *s.clock);
    s.ptp->start(s.base(now));
    stations.push_back(std::move(s));
    return stations.size() - 1;
  }
  int64_t noisy(int64_t base) {
    return base + static_cast<int64_t>(std::normal_distribution<double>(0, noise_ns)(rng));
  }
  void flush(size_t from) {
    Station& s = stations[from];
    // Two-step Follow_Ups appear while the Syncs are reported: drain them too.
    for (auto out = s.ptp->take_outgoing(); !out.empty(); out = s.ptp->take_outgoing()) flush_batch(from, out);
  }
  void flush_batch(size_t from, std::vector<TxRequest>& batch) {
    Station& s = stations[from];
    for (auto& tx : batch) {
      if (tx.port != s.link_port) continue;  // the station's other ports have no link
      const int64_t tx_base = noisy(s.base(now)) - s.tx_early_ns;
      s.ptp->stamp_one_step(tx, tx_base);
      std::vector<uint8_t> bytes(encoded_size(tx.message));
      encode(tx.message, bytes);
      PeerAddress me;
      me.unicast = true;
      me.mac[5] = static_cast<uint8_t>(from);
      for (size_t j = 0; j < stations.size(); ++j) {
        if (j == from || (tx.to.unicast ? tx.to.mac[5] != j : stations[j].multicast_deaf)) continue;
        wire.push_back({now + delay_ns, j, bytes, me});
      }
      if (tx.cookie) s.ptp->tx_done(tx.cookie, tx_base, s.base(now));
    }
  }
  void run_for(double seconds) {
    const int64_t end = now + static_cast<int64_t>(seconds * kSecond);
    while (now < end) {
      now += 1'000'000;  // 1 ms
      for (size_t k = 0; k < wire.size();) {
        if (wire[k].arrive > now) {
          ++k;
          continue;
        }
        InFlight f = std::move(wire[k]);
        wire.erase(wire.begin() + static_cast<ptrdiff_t>(k));
        Station& s = stations[f.to];
        if (!s.up) continue;
        Message m;
        if (decode(f.bytes, m) != DecodeError::kNone) {
          ++decode_failures;
          continue;
        }
        // The frame arrived at f.arrive; its receive stamp carries noise.
        s.ptp->receive(s.link_port, m, noisy(s.base(f.arrive)) + s.rx_late_ns, f.from, s.base(now));
        flush(f.to);
      }
      for (size_t i = 0; i < stations.size(); ++i) {
        if (!stations[i].up) continue;
        stations[i].ptp->tick(stations[i].base(now));
        flush(i);
      }
    }
  }
  // Station a's clock minus station b's clock, now.
  int64_t clock_difference(size_t a, size_t b) const {
    return stations[a].clock->time_at(stations[a].base(now)) - stations[b].clock->time_at(stations[b].base(now));
  }
};

InstanceConfig config(uint8_t last, uint8_t priority1, bool slave_only = false) {
  InstanceConfig c;
  c.node.defaults.identity = id(last);
  c.node.defaults.priority1 = priority1;
  c.node.defaults.slave_only = slave_only;
  c.sync = SynchronizerConfig::defaults_for(true);
  return c;
}

double worst_error_over(Lab& lab, size_t a, size_t b, double seconds) {
  double worst = 0;
  for (int i = 0; i < static_cast<int>(seconds * 4); ++i) {
    lab.run_for(0.25);
    worst = std::max(worst, std::fabs(static_cast<double>(lab.clock_difference(a, b))));
  }
  return worst;
}

}  // namespace

TEST(PtpInstanceSimulation, SlaveFollowsTheGrandmasterE2ETwoStep) {
  Lab lab;
  const size_t gm = lab.add(config(0x01, 100), 0, 0);
  const size_t slave = lab.add(config(0x02, 128, true), 50, 3'000'000);
  lab.run_for(40);
  EXPECT_EQ(lab.stations[gm].ptp->node().state(1), PortState::kMaster);
  EXPECT_EQ(lab.stations[slave].ptp->node().state(1), PortState::kSlave);
  EXPECT_EQ(lab.stations[slave].ptp->node().parent().gm_identity, id(0x01));
  EXPECT_LT(worst_error_over(lab, slave, gm, 20), 500.0);
  // 25 us each way: the measured mean path delay says so.
  EXPECT_NEAR(static_cast<double>(lab.stations[slave].ptp->synchronizer().mean_path_delay_ns()), 25'000.0, 300.0);
  const auto& sc = lab.stations[slave].ptp->counters(1);
  EXPECT_GT(sc.rx[static_cast<uint8_t>(MessageType::kFollowUp)], 50u);
  EXPECT_GT(sc.tx[static_cast<uint8_t>(MessageType::kDelayReq)], 30u);
  EXPECT_EQ(lab.decode_failures, 0u);
}

// Timestamp corrections belong to a port: a slave whose link is on its
// second port, where receive stamps run 8 us late and transmit stamps 3 us
// early, is on time with that port's corrections, and off by microseconds
// when the same corrections sit on its first port.
TEST(PtpInstanceSimulation, TimestampCorrectionsFollowThePort) {
  for (const uint16_t corrected : {2, 1}) {
    Lab lab;
    const size_t gm = lab.add(config(0x01, 100), 0, 0);
    auto c = config(0x02, 128, true);
    c.node.ports.push_back(c.node.ports[0]);
    c.corrections.resize(2);
    c.corrections[corrected - 1] = PortCorrections{8'000, 3'000, 0};
    const size_t slave = lab.add(c, 20, 2'000'000);
    lab.stations[slave].link_port = 2;
    lab.stations[slave].rx_late_ns = 8'000;
    lab.stations[slave].tx_early_ns = 3'000;
    lab.run_for(40);
    SCOPED_TRACE(corrected);
    ASSERT_EQ(lab.stations[slave].ptp->node().state(2), PortState::kSlave);
    const double worst = worst_error_over(lab, slave, gm, 20);
    if (corrected == 2) {
      EXPECT_LT(worst, 500.0);
    } else {
      EXPECT_GT(worst, 2'000.0);  // (8 - 3) / 2 us uncorrected
    }
  }
}

// G.8275.2's setting: no multicast reaches the slave. It asks the master in
// its table for Announce, Sync and Delay_Resp (the master runs the unicast
// server), selects it by the BMCA, sends its Delay_Reqs unicast, and
// follows it as closely as over multicast.
TEST(PtpInstanceSimulation, UnicastClientNegotiatesAndFollowsWithoutMulticast) {
  Lab lab;
  auto gm_config = config(0x01, 100);
  gm_config.unicast_server = true;
  const size_t gm = lab.add(gm_config, 0, 0);
  auto c = config(0x02, 128, true);
  PeerAddress gm_address;
  gm_address.unicast = true;
  gm_address.mac[5] = static_cast<uint8_t>(gm);
  c.unicast_masters = {{gm_address}};
  c.node.ports[0].log_sync_interval = -2;  // asked of the master
  c.unicast_request.duration_s = 20;  // renewed twice a minute
  const size_t slave = lab.add(c, 30, 2'000'000);
  lab.stations[slave].multicast_deaf = true;
  lab.run_for(40);
  const PtpInstance& s = *lab.stations[slave].ptp;
  ASSERT_EQ(s.node().state(1), PortState::kSlave);
  EXPECT_EQ(s.node().parent().gm_identity, id(0x01));
  EXPECT_LT(worst_error_over(lab, slave, gm, 20), 500.0);
  const UnicastRequester* r = s.unicast_requester(1);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->selected(), std::optional<size_t>{0});
  const int64_t now = lab.stations[slave].base(lab.now);
  for (UnicastKind k : {UnicastKind::kAnnounce, UnicastKind::kSync, UnicastKind::kDelayResp}) {
    EXPECT_TRUE(r->granted(0, k, now));
  }
  EXPECT_EQ(lab.stations[gm].ptp->unicast_clients(lab.stations[gm].base(lab.now)), 1u);
  // 4 Syncs a second over 60 s, all unicast (the slave hears no multicast).
  EXPECT_GT(s.counters(1).rx[static_cast<uint8_t>(MessageType::kSync)], 200u);
  EXPECT_GT(s.counters(1).rx[static_cast<uint8_t>(MessageType::kDelayResp)], 40u);
  EXPECT_EQ(lab.decode_failures, 0u);
}

TEST(PtpInstanceSimulation, OneStepAndPeerDelay) {
  Lab lab;
  auto gm_config = config(0x01, 100);
  auto slave_config = config(0x02, 128, true);
  for (auto* c : {&gm_config, &slave_config}) {
    c->two_step = false;
    c->node.ports[0].delay_mechanism = DelayMechanism::kP2P;
  }
  const size_t gm = lab.add(gm_config, 0, 0);
  const size_t slave = lab.add(slave_config, -30, -1'500'000);
  lab.run_for(40);
  EXPECT_EQ(lab.stations[slave].ptp->node().state(1), PortState::kSlave);
  EXPECT_NEAR(static_cast<double>(lab.stations[slave].ptp->peer_delay_ns(1)), 25'000.0, 200.0);
  EXPECT_NEAR(static_cast<double>(lab.stations[gm].ptp->peer_delay_ns(1)), 25'000.0, 200.0);
  EXPECT_LT(worst_error_over(lab, slave, gm, 20), 500.0);
  EXPECT_EQ(lab.stations[slave].ptp->counters(1).tx[static_cast<uint8_t>(MessageType::kDelayReq)], 0u);
}

TEST(PtpInstanceSimulation, ManagementGetsAnswerWithTheDataSets) {
  Lab lab;
  const size_t gm = lab.add(config(0x01, 100), 0, 0);
  lab.run_for(10);
  ASSERT_EQ(lab.stations[gm].ptp->node().state(1), PortState::kMaster);
  PtpInstance& ptp = *lab.stations[gm].ptp;
  for (ManagementId what : {ManagementId::kDefaultDataSet, ManagementId::kParentDataSet, ManagementId::kPortDataSet,
                            ManagementId::kCurrentDataSet, ManagementId::kTimePropertiesDataSet,
                            ManagementId::kClockDescription}) {
    Message get;
    get.header.type = MessageType::kManagement;
    get.header.source = PortIdentity{id(0x77), 1};
    get.header.sequence_id = 9;
    get.management.target = PortIdentity{ClockIdentity{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0xffff};
    get.management.starting_boundary_hops = get.management.boundary_hops = 1;
    get.management.id = static_cast<uint16_t>(what);
    ptp.receive(1, get, 0, PeerAddress{}, lab.stations[gm].base(lab.now));
    auto out = ptp.take_outgoing();
    ASSERT_EQ(out.size(), 1u);
    const ManagementBody& r = out[0].message.management;
    EXPECT_EQ(r.target, get.header.source);
    EXPECT_EQ(r.action, ManagementAction::kResponse);
    if (what == ManagementId::kDefaultDataSet) {
      DefaultDataSet d;
      ASSERT_TRUE(decode_data(r.data, d));
      EXPECT_EQ(d.identity, id(0x01));
      EXPECT_EQ(d.priority1, 100);
    } else if (what == ManagementId::kPortDataSet) {
      PortDataSet p;
      ASSERT_TRUE(decode_data(r.data, p));
      EXPECT_EQ(p.state, PortState::kMaster);
    } else if (what == ManagementId::kClockDescription) {
      EXPECT_TRUE(r.error);
      EXPECT_EQ(r.error_id, kMgmtErrorNoSuchId);
    } else {
      EXPECT_FALSE(r.error);
      EXPECT_FALSE(r.data.empty());
    }
  }
}

// Hardening: what a peer sends cannot make the engine answer on the wrong
// delay mechanism, compute with timestamps beyond int64 ns, or keep an
// ever-growing state history.
TEST(PtpInstanceSimulation, HostileFieldsAreDroppedWithAReason) {
  Lab lab;
  const size_t gm = lab.add(config(0x01, 100), 0, 0);
  lab.run_for(10);
  PtpInstance& ptp = *lab.stations[gm].ptp;
  ptp.take_outgoing();
  const int64_t now = lab.stations[gm].base(lab.now);
  Message pdelay;
  pdelay.header.type = MessageType::kPdelayReq;
  pdelay.header.source = PortIdentity{id(0x77), 1};
  ptp.receive(1, pdelay, now, PeerAddress{}, now);  // an E2E port
  EXPECT_TRUE(ptp.take_outgoing().empty());
  EXPECT_EQ(ptp.counters(1).drops[static_cast<size_t>(RxDrop::kWrongDelayMechanism)], 1u);
  Message far;
  far.header.type = MessageType::kDelayReq;
  far.header.source = PortIdentity{id(0x77), 1};
  far.timestamp.seconds = 0xffffffffffffULL;
  ptp.receive(1, far, now, PeerAddress{}, now);
  EXPECT_TRUE(ptp.take_outgoing().empty());
  EXPECT_EQ(ptp.counters(1).drops[static_cast<size_t>(RxDrop::kTimestampRange)], 1u);
  EXPECT_STREQ(rx_drop_name(RxDrop::kTimestampRange), "timestamp_range");
}

// The grandmaster goes away: the other clock (not slave-only) holds over,
// announces 135 while the bound is within spec, takes over as master, and
// follows the grandmaster again when it returns.
TEST(PtpInstanceSimulation, GrandmasterLossHoldoverAndReturn) {
  Lab lab;
  lab.noise_ns = 20;
  const size_t gm = lab.add(config(0x01, 100), 0, 0);
  auto bc = config(0x02, 128);
  bc.holdover = HoldoverPolicy{true, 1'000};
  const size_t other = lab.add(bc, 20, 1'000'000);
  lab.run_for(60);
  ASSERT_EQ(lab.stations[other].ptp->node().state(1), PortState::kSlave);
  EXPECT_EQ(lab.stations[other].ptp->clock_class(), 248);
  lab.stations[gm].up = false;
  lab.run_for(10);  // 3 x 2 s receipt timeout, then holdover and master
  EXPECT_TRUE(lab.stations[other].ptp->in_holdover());
  EXPECT_EQ(lab.stations[other].ptp->clock_class(), 135);
  EXPECT_EQ(lab.stations[other].ptp->node().state(1), PortState::kMaster);
  const int64_t drift_10s = std::llabs(lab.clock_difference(other, gm));
  EXPECT_LT(drift_10s, 1'000);  // the learnt frequency holds it
  lab.run_for(3000);            // long enough for the bound to leave the spec
  EXPECT_EQ(lab.stations[other].ptp->clock_class(), 165);
  lab.stations[gm].up = true;
  lab.run_for(40);
  EXPECT_EQ(lab.stations[other].ptp->node().state(1), PortState::kSlave);
  EXPECT_FALSE(lab.stations[other].ptp->in_holdover());
  EXPECT_EQ(lab.stations[other].ptp->clock_class(), 248);
  EXPECT_LT(worst_error_over(lab, other, gm, 10), 300.0);
}

// A grandmaster with its own reference: class 6 while the reference is
// locked, 7 in holdover.
TEST(PtpInstanceSimulation, GrandmasterReferenceClasses) {
  Lab lab;
  auto c = config(0x01, 128);
  c.has_reference = true;
  c.node.defaults.quality.clock_class = 248;
  const size_t gm = lab.add(c, 10, 0);
  PtpInstance& ptp = *lab.stations[gm].ptp;
  lab.run_for(8);
  EXPECT_EQ(ptp.clock_class(), 248);  // free-running until the reference locks
  for (int i = 0; i < 20; ++i) {
    lab.run_for(1);
    const int64_t base = lab.stations[gm].base(lab.now);
    // The reference is true time on the PTP timescale.
    ptp.reference_sample(lab.stations[gm].clock->time_at(base) - (kEpoch + lab.now), base, 1.0);
  }
  EXPECT_EQ(ptp.clock_class(), 6);
  EXPECT_LT(std::llabs(lab.stations[gm].clock->time_at(lab.stations[gm].base(lab.now)) - (kEpoch + lab.now)), 1'000);
  ptp.reference_lost(lab.stations[gm].base(lab.now));
  EXPECT_EQ(ptp.clock_class(), 7);
}
