// The process's one time base: the TSC's rate, measured against
// CLOCK_MONOTONIC_RAW at start-up instead of taken from DPDK. On CPUs that
// do not publish their TSC frequency (AMD among them) DPDK 22.11 estimates
// it and rounds to 10 MHz: 2.100 GHz for a 2.096 GHz TSC on this project's
// CI machines, about 1,900 ppm off (1,913 measured), which no PTP servo range and no QoS rate
// tolerates. The engine hands the calibrated rate to every module (PTP's
// clock base and transparent clock, the QoS scheduler's picoseconds, VXLAN
// ageing); nothing else reads rte_get_tsc_hz() for timekeeping.
//
// The rate in use is fixed at start-up: every clock built on it (PTP's
// base above all) must stay continuous. The control lcore keeps measuring
// (refine()), so status shows how good it is: the estimate's uncertainty
// falls as 1/T, and its distance from the rate in use is what the clocks
// built on it are off by.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "config/metrics.h"

namespace meridian::dataplane {

/// Pure logic: a counter's frequency from (counter, reference ns) pairs,
/// each a reference reading bracketed by two counter reads and taken at
/// their midpoint. The first and the latest pair give the estimate; each
/// end is uncertain by half its bracket and by the reference's 1 ns.
class TscCalibrator {
 public:
  struct Sample {
    uint64_t tsc = 0;
    int64_t ref_ns = 0;
    uint64_t bracket_ticks = 0;
  };

  void add(const Sample& s) {
    if (count_++ == 0) first_ = s;
    last_ = s;
  }
  size_t samples() const { return count_; }
  bool ready() const { return count_ >= 2 && last_.ref_ns > first_.ref_ns && last_.tsc != first_.tsc; }
  double span_seconds() const { return ready() ? static_cast<double>(last_.ref_ns - first_.ref_ns) / 1e9 : 0; }
  /// Counter ticks per reference second (0 until two samples).
  double hz() const {
    if (!ready()) return 0;
    return static_cast<double>(last_.tsc - first_.tsc) * 1e9 / static_cast<double>(last_.ref_ns - first_.ref_ns);
  }
  /// Worst-case relative error of hz(), ppm.
  double uncertainty_ppm() const {
    if (!ready()) return 1e6;
    const double span_ticks = static_cast<double>(last_.tsc - first_.tsc);
    const double ends = (static_cast<double>(first_.bracket_ticks) + static_cast<double>(last_.bracket_ticks)) / 2 +
                        2e-9 * hz();  // 1 ns of reference resolution at each end
    return ends / span_ticks * 1e6;
  }
  const Sample& first() const { return first_; }

 private:
  size_t count_ = 0;
  Sample first_{}, last_{};
};

/// The calibrated time base (DPDK glue: rte_rdtsc, CLOCK_MONOTONIC_RAW).
class TimeBase {
 public:
  static TimeBase& instance();

  /// Measures the TSC against CLOCK_MONOTONIC_RAW over `span` (blocks) and
  /// makes that the rate in use; logs it, and warns when DPDK's figure is
  /// more than 100 ppm away. Once per process (eal_init calls it); later
  /// calls do nothing.
  void calibrate(std::chrono::milliseconds span = std::chrono::milliseconds(250));
  bool calibrated() const { return calibrated_; }
  /// TSC ticks per second in use: the calibrated figure (DPDK's until calibrate()).
  uint64_t hz() const;
  /// What DPDK reports (rte_get_tsc_hz): shown beside, never used for time.
  uint64_t dpdk_hz() const;
  /// Control lcore: one more sample every `every` at most; the estimate
  /// sharpens. Warns once if it leaves the rate in use by more than 10 ppm.
  void refine(std::chrono::seconds every = std::chrono::seconds(1));

  /// The running estimate, from the first start-up sample to the latest.
  const TscCalibrator& estimate() const { return estimate_; }

  nlohmann::json status() const;
  void metrics(config::MetricsWriter& out) const;

  /// One (TSC, CLOCK_MONOTONIC_RAW) pair: the narrowest of `tries` brackets.
  static TscCalibrator::Sample sample(int tries = 7);

 private:
  TimeBase() = default;
  bool calibrated_ = false;
  uint64_t hz_ = 0;
  uint64_t dpdk_hz_ = 0;
  TscCalibrator estimate_;  // from the first start-up sample to the latest
  std::chrono::steady_clock::time_point last_refine_{};
  bool warned_drift_ = false;
};

/// Shorthand for TimeBase::instance().hz().
inline uint64_t tsc_hz() { return TimeBase::instance().hz(); }

}  // namespace meridian::dataplane
