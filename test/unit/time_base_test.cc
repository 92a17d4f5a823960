// The calibrated time base's pure part: the TSC's rate estimated from
// (counter, CLOCK_MONOTONIC_RAW) pairs on a simulated counter. (The clock
// base's conversions at that rate: ptp_timebase_test.cc.)
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "dataplane/time_base.h"

using meridian::dataplane::TscCalibrator;

namespace {

/// A counter at `nominal_hz` * (1 + ppm), read around a reference clock; a
/// read takes 20-80 ns, sometimes a preemption of 20 us lands inside one.
struct SimulatedCounter {
  double hz;
  uint64_t origin;
  std::mt19937_64 rng{7};
  TscCalibrator::Sample sample(int64_t ref_ns, int tries = 7) {
    TscCalibrator::Sample best;
    best.bracket_ticks = UINT64_MAX;
    for (int i = 0; i < tries; ++i) {
      std::uniform_real_distribution<double> read_ns(20, 80);
      const double before_ns = static_cast<double>(ref_ns) - read_ns(rng);
      double after_ns = static_cast<double>(ref_ns) + read_ns(rng);
      if (rng() % 5 == 0) after_ns += 20'000;  // preempted between the reads
      const auto at = [&](double ns) { return origin + static_cast<uint64_t>(ns * hz / 1e9); };
      const uint64_t before = at(before_ns), after = at(after_ns);
      if (after - before < best.bracket_ticks) best = {before + (after - before) / 2, ref_ns, after - before};
    }
    return best;
  }
};

}  // namespace

TEST(TscCalibrator, ConvergesWithinOnePpmForCountersFarFromNominal) {
  for (double ppm : {-2000.0, -1906.0, 0.0, 1906.0, 2000.0}) {
    const double true_hz = 2.1e9 * (1 + ppm * 1e-6);
    SimulatedCounter counter{true_hz, 0xfffffff000000000ULL};  // wraps past 2^64 on the way
    TscCalibrator cal;
    cal.add(counter.sample(1'000'000'000));
    cal.add(counter.sample(1'250'000'000));  // start-up: 250 ms
    const double startup_error = std::fabs(cal.hz() - true_hz) / true_hz * 1e6;
    EXPECT_LT(startup_error, 1.0) << ppm << " ppm";
    EXPECT_LE(startup_error, cal.uncertainty_ppm()) << "the bound holds";
    for (int s = 2; s <= 60; ++s) cal.add(counter.sample(1'000'000'000 + int64_t{s} * 1'000'000'000));
    const double refined_error = std::fabs(cal.hz() - true_hz) / true_hz * 1e6;
    EXPECT_LT(refined_error, 0.01) << ppm << " ppm";
    EXPECT_LT(cal.uncertainty_ppm(), 0.01);
    EXPECT_NEAR(cal.span_seconds(), 60.0, 1e-9);
  }
}

TEST(TscCalibrator, IsNotReadyWithoutTwoDistinctSamples) {
  TscCalibrator cal;
  EXPECT_FALSE(cal.ready());
  EXPECT_EQ(cal.hz(), 0);
  cal.add({100, 5, 10});
  cal.add({100, 5, 10});
  EXPECT_FALSE(cal.ready());
}
