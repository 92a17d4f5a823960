// The free-running bases under Meridian's PTP clock and the conversions
// between them. Pure logic: the readers are passed in, so tests run them on
// simulated counters.
// - The TSC, as nanoseconds since an origin (TscTimebase).
// - Any other clock (CLOCK_REALTIME for kernel stamps, a NIC's PTP clock for
//   hardware stamps) is tied to the TSC by a cross-timestamp: the other
//   clock read between two TSC reads, the narrowest of a few tries, taken
//   as read at the midpoint. Kept fresh (one per conversion): the clocks'
//   rates differ by ppm, so an old pair drifts.
#pragma once

#include <cstdint>
#include <utility>

namespace meridian::ptp {

/// TSC readings as nanoseconds since a fixed origin.
struct TscTimebase {
  uint64_t origin = 0;
  uint64_t hz = 1;
  int64_t to_ns(uint64_t tsc) const {
    return static_cast<int64_t>(static_cast<__int128>(static_cast<int64_t>(tsc - origin)) * 1'000'000'000 /
                                static_cast<__int128>(hz));
  }
  /// The TSC reading `ns` after the origin (inverse of to_ns).
  uint64_t to_tsc(int64_t ns) const {
    return origin + static_cast<uint64_t>(static_cast<__int128>(ns) * static_cast<__int128>(hz) / 1'000'000'000);
  }
};

/// Another clock's reading (ns) at a TSC reading.
struct CrossTimestamp {
  uint64_t tsc = 0;
  int64_t other_ns = 0;
  uint64_t bracket_ticks = 0;  // TSC ticks between the reads around it: its uncertainty

  /// The other clock at `tsc_then`, assuming it runs at the TSC's rate for
  /// the short span between the pair and `tsc_then`.
  int64_t other_at(uint64_t tsc_then, uint64_t hz) const {
    return other_ns + ticks_to_ns(static_cast<int64_t>(tsc_then - tsc), hz);
  }
  /// The TSC when the other clock read `other_then`.
  uint64_t tsc_at(int64_t other_then, uint64_t hz) const {
    return tsc + static_cast<uint64_t>(static_cast<__int128>(other_then - other_ns) * static_cast<__int128>(hz) /
                                       1'000'000'000);
  }
  static int64_t ticks_to_ns(int64_t ticks, uint64_t hz) {
    return static_cast<int64_t>(static_cast<__int128>(ticks) * 1'000'000'000 / static_cast<__int128>(hz));
  }
};

/// Reads `read_other` between two `read_tsc` calls `tries` times and keeps
/// the narrowest bracket: the other clock is taken as read at its midpoint.
template <class ReadTsc, class ReadOther>
CrossTimestamp cross_timestamp(ReadTsc read_tsc, ReadOther read_other, int tries = 3) {
  CrossTimestamp best;
  best.bracket_ticks = UINT64_MAX;
  for (int i = 0; i < tries; ++i) {
    const uint64_t before = read_tsc();
    const int64_t other = read_other();
    const uint64_t after = read_tsc();
    if (after - before < best.bracket_ticks) {
      best = CrossTimestamp{before + (after - before) / 2, other, after - before};
    }
  }
  return best;
}

}  // namespace meridian::ptp
