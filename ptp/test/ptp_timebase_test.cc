// The clock bases' conversions (ptp/timebase.h) on simulated counters: a
// TSC at 2.5 GHz and another clock (a NIC's, CLOCK_REALTIME) with its own
// offset, read with a delay that varies between tries.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "ptp/timebase.h"

namespace meridian::ptp {
namespace {

constexpr uint64_t kHz = 2'500'000'000;

TEST(TscTimebase, ConvertsBothWaysAcrossTheOrigin) {
  const TscTimebase tb{1'000'000, kHz};
  EXPECT_EQ(tb.to_ns(1'000'000), 0);
  EXPECT_EQ(tb.to_ns(1'000'000 + kHz), 1'000'000'000);
  EXPECT_EQ(tb.to_ns(1'000'000 - 2500), -1000);  // before the origin
  for (int64_t ns : {int64_t{0}, int64_t{-1000}, int64_t{123'456'789}, int64_t{86'400} * 1'000'000'000}) {
    EXPECT_NEAR(static_cast<double>(tb.to_ns(tb.to_tsc(ns))), static_cast<double>(ns), 1.0);  // truncation
  }
}

// At a calibrated, odd rate (2,096,001,789 Hz, this CI machine's TSC): a
// year of ticks converts exactly, a counter that wrapped past 2^64 since
// the origin still converts, and the widest spans stay finite.
TEST(TscTimebase, IsExactAtTheEdgesForAnyRate) {
  constexpr uint64_t hz = 2'096'001'789;
  const TscTimebase tb{UINT64_MAX - 1000, hz};
  EXPECT_EQ(tb.to_ns(tb.origin + hz), 1'000'000'000);  // wraps past 2^64
  const uint64_t year = hz * 365 * 86'400;
  EXPECT_EQ(tb.to_ns(tb.origin + year), int64_t{365} * 86'400 * 1'000'000'000);
  EXPECT_EQ(tb.to_tsc(int64_t{365} * 86'400 * 1'000'000'000), tb.origin + year);
  EXPECT_GT(tb.to_ns(tb.origin + (uint64_t{1} << 62)), tb.to_ns(tb.origin + (uint64_t{1} << 61)));
}

// A simulated pair of clocks: every read advances the TSC by its cost; the
// other clock reads the TSC's time plus an offset, taken `read_delay` ticks
// into its read (a PCIe read of a NIC register is slow and uneven).
struct SimClocks {
  uint64_t tsc = 5'000'000;
  int64_t offset_ns = 1'700'000'000'000'000'000;  // the other clock: PTP time, say
  std::vector<uint64_t> read_delays;              // per try, in ticks
  size_t next = 0;
  uint64_t read_tsc() {  // a 50-tick read that samples in its middle
    tsc += 50;
    return tsc - 25;
  }
  int64_t read_other() {
    const uint64_t d = read_delays[next++ % read_delays.size()];
    tsc += d;
    const int64_t at = CrossTimestamp::ticks_to_ns(static_cast<int64_t>(tsc), kHz) + offset_ns;
    tsc += d;  // the read returns as slowly as it went out
    return at;
  }
  int64_t other_at_tsc(uint64_t t) const { return CrossTimestamp::ticks_to_ns(static_cast<int64_t>(t), kHz) + offset_ns; }
};

TEST(CrossTimestamp, KeepsTheNarrowestBracketAndItsMidpoint) {
  SimClocks c;
  c.read_delays = {5000, 250, 2500};  // 2 us, 100 ns, 1 us each way
  const CrossTimestamp pair = cross_timestamp([&] { return c.read_tsc(); }, [&] { return c.read_other(); });
  EXPECT_EQ(pair.bracket_ticks, 2u * 250 + 50);  // the second try
  // Symmetric read: the midpoint is when the other clock was sampled, to a tick.
  EXPECT_NEAR(static_cast<double>(pair.other_ns), static_cast<double>(c.other_at_tsc(pair.tsc)), 1.0);
}

TEST(CrossTimestamp, ConvertsStampsBothWaysNearThePair) {
  SimClocks c;
  c.read_delays = {250};
  const CrossTimestamp pair = cross_timestamp([&] { return c.read_tsc(); }, [&] { return c.read_other(); });
  // A stamp from 3 ms before the pair, and a TSC reading 1 ms after it.
  const uint64_t earlier = pair.tsc - 3 * kHz / 1000;
  EXPECT_NEAR(static_cast<double>(pair.other_at(earlier, kHz)), static_cast<double>(c.other_at_tsc(earlier)), 2.0);
  const int64_t stamp = c.other_at_tsc(pair.tsc + kHz / 1000);
  EXPECT_NEAR(static_cast<double>(pair.tsc_at(stamp, kHz)), static_cast<double>(pair.tsc + kHz / 1000), 5.0);
  // Round trip: other -> TSC -> other.
  EXPECT_NEAR(static_cast<double>(pair.other_at(pair.tsc_at(stamp, kHz), kHz)), static_cast<double>(stamp), 1.0);
}

TEST(CrossTimestamp, AnAsymmetricReadShowsAsHalfTheBracketAtMost) {
  // The other clock sampled at the start of a slow read: the midpoint guess
  // is off by less than half the bracket, which the pair reports.
  SimClocks c;
  uint64_t tsc = 1000;
  auto read_tsc = [&] { return tsc += 50; };
  auto read_other = [&] {
    const int64_t at = c.other_at_tsc(tsc);
    tsc += 5000;  // the answer takes 2 us to come back
    return at;
  };
  const CrossTimestamp pair = cross_timestamp(read_tsc, read_other);
  const double error_ticks = static_cast<double>(c.other_at_tsc(pair.tsc) - pair.other_ns) * kHz / 1e9;
  EXPECT_GT(error_ticks, 0);
  EXPECT_LE(error_ticks, static_cast<double>(pair.bracket_ticks) / 2 + 1);
}

}  // namespace
}  // namespace meridian::ptp
