// Meridian's own PTP clock: a phase and a frequency over a free-running base
// (the TSC, or a NIC clock read through rte_eth_timesync_*). Servos and
// holdover steer this object; it never touches CLOCK_REALTIME. Pure logic:
// the caller reads the base and passes it in, so tests run on simulated time.
//
// Times are signed nanoseconds. PTP time is nanoseconds since the PTP epoch
// (TAI 1970-01-01), which an int64 holds until the year 2262.
#pragma once

#include <cstdint>

#include "ptp/message.h"

namespace meridian::ptp {

inline constexpr int64_t kNsPerSecond = 1'000'000'000;

inline int64_t to_ns(const Timestamp& t) {
  return static_cast<int64_t>(t.seconds) * kNsPerSecond + t.nanoseconds;
}
/// Negative times clamp to zero: PTP timestamps are unsigned.
inline Timestamp to_timestamp(int64_t ns) {
  if (ns < 0) return Timestamp{};
  return Timestamp{static_cast<uint64_t>(ns / kNsPerSecond), static_cast<uint32_t>(ns % kNsPerSecond)};
}

class PtpClock {
 public:
  /// PTP time at base reading `base_ns`.
  int64_t time_at(int64_t base_ns) const {
    const int64_t elapsed = base_ns - anchor_base_;
    return anchor_time_ + elapsed + static_cast<int64_t>(static_cast<double>(elapsed) * ppb_ * 1e-9);
  }
  /// Base reading at which the clock shows `time_ns` (for scheduling).
  int64_t base_at(int64_t time_ns) const {
    const double elapsed = static_cast<double>(time_ns - anchor_time_) / (1.0 + ppb_ * 1e-9);
    return anchor_base_ + static_cast<int64_t>(elapsed);
  }
  /// Sets the time; the frequency stays.
  void set_time(int64_t base_ns, int64_t time_ns) {
    anchor_base_ = base_ns;
    anchor_time_ = time_ns;
  }
  /// Moves the phase by `delta_ns` at once.
  void step(int64_t base_ns, int64_t delta_ns) {
    reanchor(base_ns);
    anchor_time_ += delta_ns;
    ++steps_;
  }
  /// Runs `ppb` parts per billion faster than the base from `base_ns` on;
  /// the time is continuous across the change.
  void set_frequency(int64_t base_ns, double ppb) {
    reanchor(base_ns);
    ppb_ = ppb;
  }
  double frequency_ppb() const { return ppb_; }
  uint64_t steps() const { return steps_; }

 private:
  void reanchor(int64_t base_ns) {
    anchor_time_ = time_at(base_ns);
    anchor_base_ = base_ns;
  }

  int64_t anchor_base_ = 0;
  int64_t anchor_time_ = 0;
  double ppb_ = 0;
  uint64_t steps_ = 0;
};

}  // namespace meridian::ptp
