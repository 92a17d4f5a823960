// The PTP clock object, packet selection, servos and holdover, on the
// simulated master, link and oscillator of ptp/sim (drift 50 ppm, software
// and hardware timestamp noise, exponential queueing, loss of the master).
#include <gtest/gtest.h>

#include <cmath>

#include "ptp/clock_class.h"
#include "ptp/sim/link_simulator.h"
#include "ptp/synchronizer.h"

using namespace meridian::ptp;

namespace {

SynchronizerConfig linuxptp(bool hw) {
  SynchronizerConfig c;
  c.servo.kind = ServoKind::kLinuxPi;
  c.servo.hardware_timestamps = hw;
  c.filter.kind = FilterKind::kLinuxMedian;
  c.filter.window = 10;
  return c;
}

sim::LinkConfig link(double noise_ns, uint64_t seed) {
  sim::LinkConfig l;
  l.timestamp_noise_ns = noise_ns;
  l.seed = seed;
  l.duration_s = 400;
  return l;
}

}  // namespace

TEST(PtpClock, FrequencyAndStepsKeepTimeContinuous) {
  PtpClock c;
  c.set_time(1'000, 5'000'000'000);
  EXPECT_EQ(c.time_at(1'000 + kNsPerSecond), 6'000'000'000);
  c.set_frequency(1'000 + kNsPerSecond, 1'000);  // +1 ppm from here on
  EXPECT_EQ(c.time_at(1'000 + kNsPerSecond), 6'000'000'000);
  EXPECT_EQ(c.time_at(1'000 + 2 * kNsPerSecond), 7'000'001'000);
  c.step(1'000 + 2 * kNsPerSecond, -500);
  EXPECT_EQ(c.time_at(1'000 + 2 * kNsPerSecond), 7'000'000'500);
  EXPECT_EQ(c.steps(), 1u);
  EXPECT_NEAR(static_cast<double>(c.base_at(c.time_at(123'456'789'000))), 123'456'789'000.0, 1.0);
  EXPECT_EQ(to_ns(to_timestamp(1'700'000'000'123'456'789)), 1'700'000'000'123'456'789);
}

TEST(Servo, AdaptiveStepsOnlyBeyondTheFirstStepThreshold) {
  Servo far({}, 0);
  const ServoAction a = far.sample(2'500'000, 1'000'000'000, 1.0);
  EXPECT_TRUE(a.step);
  EXPECT_EQ(a.step_ns, -2'500'000);
  EXPECT_EQ(a.state, ServoState::kStepped);
  Servo near({}, 0);
  const ServoAction b = near.sample(15'000, 1'000'000'000, 1.0);
  EXPECT_FALSE(b.step);
  EXPECT_EQ(b.state, ServoState::kUnlocked);
  const ServoAction c = near.sample(16'000, 2'000'000'000, 1.0);
  EXPECT_FALSE(c.step);
  EXPECT_TRUE(c.set_frequency);
  EXPECT_EQ(c.state, ServoState::kLocked);
  EXPECT_LT(c.frequency_ppb, 0);  // our clock is ahead and gaining: slow it down
}

TEST(Servo, LinuxPiWaitsForItsFrequencyEstimateInterval) {
  ServoConfig sw;
  sw.kind = ServoKind::kLinuxPi;
  Servo pi(sw, 0);
  // ki = 0.001 at 1 s: linuxptp waits 0.016 / ki = 16 s between the two samples.
  EXPECT_EQ(pi.sample(100'000, 0, 1.0).state, ServoState::kUnlocked);
  EXPECT_EQ(pi.sample(100'500, 10 * kNsPerSecond, 1.0).state, ServoState::kUnlocked);
  const ServoAction jump = pi.sample(101'600, 16 * kNsPerSecond, 1.0);
  EXPECT_EQ(jump.state, ServoState::kStepped);
  EXPECT_EQ(jump.step_ns, -101'600);
  EXPECT_NEAR(jump.frequency_ppb, -100.0, 0.1);  // 1600 ns over 16 s
  ServoConfig hw = sw;
  hw.hardware_timestamps = true;
  Servo fast(hw, 0);
  fast.sample(1'000, 0, 1.0);
  EXPECT_EQ(fast.sample(1'100, kNsPerSecond, 1.0).state, ServoState::kLocked);  // 0.016 / 0.3 s
}

TEST(DelayMeasurement, MinimumPicksTheLeastQueuedPacketInEachDirection) {
  FilterConfig f;
  f.kind = FilterKind::kMinimum;
  f.window = 4;
  DelayMeasurement m(f);
  PtpClock clock;  // time = base: offset 0 throughout
  const int64_t d = 30'000;
  const int64_t queue[] = {9'000, 200, 4'000, 7'000};
  for (int i = 0; i < 4; ++i) {
    const int64_t t = (i + 1) * kNsPerSecond;
    m.add_sync(t - d - queue[i], t, t, 0);
    m.add_delay(t + 5'000'000, t + 5'000'000, t + 5'000'000 + d + queue[3 - i], 0);
  }
  int64_t offset = 0, delay = 0;
  ASSERT_TRUE(m.estimate(5 * kNsPerSecond, clock, 0, 0.1, offset, delay));
  EXPECT_EQ(offset, 0);
  EXPECT_EQ(delay, d + 200);
}

TEST(DelayMeasurement, StoredSamplesFollowTheClockAcrossAStep) {
  FilterConfig f;
  f.kind = FilterKind::kMinimum;
  DelayMeasurement m(f);
  PtpClock clock;
  clock.set_time(0, 1'000'000);  // 1 ms ahead of the master (master time = base)
  const int64_t d = 30'000;
  m.add_sync(kNsPerSecond - d, clock.time_at(kNsPerSecond), kNsPerSecond, 0);
  const int64_t t3 = clock.time_at(kNsPerSecond + 2'000'000);
  m.add_delay(t3, kNsPerSecond + 2'000'000, kNsPerSecond + 2'000'000 + d, 0);
  clock.step(kNsPerSecond + 3'000'000, -1'000'000);
  int64_t offset = 0, delay = 0;
  ASSERT_TRUE(m.estimate(2 * kNsPerSecond, clock, 0, 0.1, offset, delay));
  EXPECT_EQ(offset, 0);  // the step is carried into the stored measurements
  EXPECT_EQ(delay, d);
}

TEST(DelayMeasurement, PeerDelayMakesOffsetsOneWay) {
  FilterConfig f;
  f.kind = FilterKind::kLatest;
  DelayMeasurement m(f);
  PtpClock clock;
  int64_t offset = 0, delay = 0;
  m.add_sync(kNsPerSecond - 25'000 - 700, kNsPerSecond, kNsPerSecond, 0);
  EXPECT_FALSE(m.estimate(kNsPerSecond, clock, 0, 0, offset, delay));
  m.set_peer_delay(25'000);
  ASSERT_TRUE(m.estimate(kNsPerSecond, clock, 0, 0, offset, delay));
  EXPECT_EQ(offset, 700);
  EXPECT_EQ(delay, 25'000);
}

// The acceptance figures, on three seeds each: software noise at
// 1 Hz locks (|TE| < 1 us from then on) within 10 s with rms <= 100 ns, and
// beats linuxptp's PI on the same traces in both.
TEST(ServoSimulation, SoftwareTimestampsAt1HzLockFastAndQuiet) {
  for (uint64_t seed : {1, 2, 3}) {
    const auto ours = sim::summarize(sim::run_link(link(500, seed), SynchronizerConfig::defaults_for(false)));
    const auto pi = sim::summarize(sim::run_link(link(500, seed), linuxptp(false)));
    SCOPED_TRACE(seed);
    EXPECT_GE(ours.lock_time_s, 0);
    EXPECT_LE(ours.lock_time_s, 10.0);
    EXPECT_LE(ours.rms_ns, 100.0);
    EXPECT_LT(ours.lock_time_s, pi.lock_time_s);
    EXPECT_LT(ours.rms_ns, pi.rms_ns);
  }
}

TEST(ServoSimulation, HardwareTimestampsAt8HzTrackWithinTensOfNanoseconds) {
  for (uint64_t seed : {1, 2, 3}) {
    auto l = link(20, seed);
    l.sync_interval_s = 0.125;
    const auto ours = sim::summarize(sim::run_link(l, SynchronizerConfig::defaults_for(true)));
    const auto pi = sim::summarize(sim::run_link(l, linuxptp(true)));
    SCOPED_TRACE(seed);
    EXPECT_LE(ours.lock_time_s, 2.0);
    EXPECT_LE(ours.rms_ns, 15.0);
    EXPECT_LT(ours.rms_ns, pi.rms_ns);
  }
}

// The time-base issue: a clock base 2,000 ppm off (DPDK's rounded TSC
// frequency on AMD was about 1,900 ppm off) pinned the servo at its old 500 ppm
// limit. With ptp4l's range it locks within the same targets as a 50 ppm base.
TEST(ServoSimulation, ABase2000PpmOffLocksWithinTheUsualTargets) {
  for (uint64_t seed : {1, 2, 3}) {
    for (double ppm : {2000.0, -2000.0}) {
      auto l = link(500, seed);
      l.base_frequency_error_ppm = ppm;
      const auto ours = sim::summarize(sim::run_link(l, SynchronizerConfig::defaults_for(false)));
      SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << ppm << " ppm");
      EXPECT_GE(ours.lock_time_s, 0);
      EXPECT_LE(ours.lock_time_s, 10.0);
      EXPECT_LE(ours.rms_ns, 100.0);
    }
  }
  // The old limit cannot follow it: the servo never locks.
  auto l = link(500, 1);
  l.base_frequency_error_ppm = 2000;
  auto narrow = SynchronizerConfig::defaults_for(false);
  narrow.servo.max_frequency_ppb = 500'000;
  EXPECT_LT(sim::summarize(sim::run_link(l, narrow)).lock_time_s, 0);
}

// Exponential queueing with a 10 us mean each way: ptp4l's median path delay
// sits below the mean, which biases its offsets; ours stay within 1 us.
TEST(ServoSimulation, ExponentialQueueingLeavesNoBias) {
  for (uint64_t seed : {1, 2, 3}) {
    auto l = link(500, seed);
    l.exponential_delay_mean_ns = 10'000;
    l.duration_s = 600;
    const auto ours = sim::summarize(sim::run_link(l, SynchronizerConfig::defaults_for(false)));
    SCOPED_TRACE(seed);
    EXPECT_LE(std::fabs(ours.mean_ns), 1'000.0);
    EXPECT_LE(ours.rms_ns, 2'000.0);
  }
}

TEST(ServoSimulation, ConfiguredAsymmetryRemovesItsOffset) {
  auto l = link(20, 7);
  l.asymmetry_ns = 4'000;  // master-to-slave 4 us longer: offsets read 2 us high
  auto plain = SynchronizerConfig::defaults_for(true);
  const auto biased = sim::summarize(sim::run_link(l, plain));
  EXPECT_NEAR(biased.mean_ns, -2'000.0, 50.0);
  plain.delay_asymmetry_ns = 2'000;  // half the difference, per §16.8
  const auto corrected = sim::summarize(sim::run_link(l, plain));
  EXPECT_NEAR(corrected.mean_ns, 0.0, 50.0);
}

// A single spike (a Sync that sat in a queue for a millisecond) is held back
// as an outlier once locked; it costs no step and no visible error.
TEST(ServoSimulation, OutliersAreHeldBack) {
  Servo s(ServoConfig{}, 0);
  int64_t local = 0;
  for (int i = 0; i < 40; ++i) s.sample(i % 2 ? 50 : -50, local += kNsPerSecond, 1.0);
  const double before = s.frequency_estimate_ppb();
  const ServoAction spike = s.sample(1'000'000, local += kNsPerSecond, 1.0);
  EXPECT_FALSE(spike.step);
  EXPECT_EQ(s.outliers(), 1u);
  EXPECT_NEAR(s.frequency_estimate_ppb(), before, 0.5);
  EXPECT_NEAR(spike.frequency_ppb, before, 100.0);
}

// One Sync delayed by a host scheduling spike while the servo is still
// acquiring, before it knows the noise well enough to hold the sample back.
// The spoilt rate must be noticed and re-learnt, not averaged away: before
// this was handled, a 40 us spike in the first five seconds left the servo
// "locked" while its clock ran off by tens of microseconds for minutes.
TEST(ServoSimulation, ASpikeDuringAcquisitionIsRelearnt) {
  uint64_t reacquired = 0;
  for (double spike_ns : {40'000.0, 100'000.0, 1'000'000.0}) {
    for (double at_s = 1; at_s <= 20; ++at_s) {
      auto l = link(300, 5);
      l.duration_s = 120;
      l.base_frequency_error_ppm = 20;
      l.sync_spike_at_s = at_s;
      l.sync_spike_ns = spike_ns;
      uint64_t events = 0;
      const auto s = sim::summarize(sim::run_link(l, SynchronizerConfig::defaults_for(false),
                                                  [&](double, double, const ClockSynchronizer& c) {
                                                    events = c.servo().reacquisitions();
                                                  }));
      reacquired += events;
      SCOPED_TRACE(testing::Message() << spike_ns << " ns at " << at_s << " s");
      EXPECT_GE(s.lock_time_s, 0);
      EXPECT_LE(s.lock_time_s, 20.0);
      EXPECT_LE(s.rms_ns, 100.0);
    }
  }
  EXPECT_GT(reacquired, 0u);  // the early spikes were caught by re-acquiring, not luck
}

// Loss of the master after lock: holdover at the learnt frequency, the
// error stays inside the servo's own three-sigma bound, the announced class
// goes 6 -> 7 -> 140 (telecom) as the bound crosses the spec, and the clock
// relocks without a step when the master returns.
TEST(ServoSimulation, HoldoverKeepsItsBoundAndClassesFollowIt) {
  auto l = link(20, 11);
  l.duration_s = 1200;
  l.master_loss_start_s = 300;
  l.master_loss_end_s = 900;
  PtpClock* clock_seen = nullptr;
  double worst_ratio = 0;
  bool saw7 = false, saw140 = false, class_after_140_is_7 = false;
  uint64_t steps_before = 0, steps_after = 0;
  double holdover_start = -1;
  HoldoverPolicy telecom{true, 1'000};
  auto observe = [&](double t, double te, const ClockSynchronizer& s) {
    (void)clock_seen;
    if (t < 290) steps_before = s.clock().steps();
    if (s.servo().state() == ServoState::kHoldover) {
      if (holdover_start < 0) holdover_start = t;
      const double bound = s.servo().holdover_error_bound_ns(t - holdover_start);
      worst_ratio = std::max(worst_ratio, std::fabs(te) / bound);
      const uint8_t cls = announced_clock_class(ClockRole::kGrandmaster, TimeSource::kHoldover, bound, telecom);
      if (cls == 7) {
        saw7 = true;
        if (saw140) class_after_140_is_7 = true;
      }
      if (cls == 140) saw140 = true;
    }
    steps_after = s.clock().steps();
  };
  const auto trace = sim::run_link(l, SynchronizerConfig::defaults_for(true), observe);
  EXPECT_GT(holdover_start, 300.0);
  EXPECT_LE(worst_ratio, 1.0);
  EXPECT_TRUE(saw7);
  EXPECT_TRUE(saw140);
  EXPECT_FALSE(class_after_140_is_7);
  EXPECT_EQ(steps_after, steps_before);
  const auto relocked = sim::summarize(trace, 1000, 920);
  EXPECT_LE(relocked.rms_ns, 30.0);
}

TEST(ClockClass, RolesAndHoldover) {
  HoldoverPolicy media{false, 1'000};
  HoldoverPolicy telecom{true, 1'000};
  EXPECT_EQ(announced_clock_class(ClockRole::kGrandmaster, TimeSource::kLocked, 0, media), 6);
  EXPECT_EQ(announced_clock_class(ClockRole::kGrandmaster, TimeSource::kHoldover, 500, media), 7);
  EXPECT_EQ(announced_clock_class(ClockRole::kGrandmaster, TimeSource::kHoldover, 5'000, media), 248);
  EXPECT_EQ(announced_clock_class(ClockRole::kGrandmaster, TimeSource::kHoldover, 5'000, telecom), 140);
  EXPECT_EQ(announced_clock_class(ClockRole::kBoundary, TimeSource::kHoldover, 500, telecom), 135);
  EXPECT_EQ(announced_clock_class(ClockRole::kBoundary, TimeSource::kHoldover, 5'000, telecom), 165);
  EXPECT_EQ(announced_clock_class(ClockRole::kGrandmaster, TimeSource::kFreeRunning, 0, media), 248);
  EXPECT_EQ(announced_clock_class(ClockRole::kSlaveOnly, TimeSource::kLocked, 0, media), 255);
}
