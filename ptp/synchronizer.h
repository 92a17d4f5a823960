// The slave side of one port: timestamps in, our clock steered. Joins the
// delay measurement (packet selection) to the servo and applies what the
// servo decides to the PtpClock. Pure logic: base readings come from the
// caller, so the DPDK port and the simulator drive the same code.
#pragma once

#include <cstdint>

#include "ptp/clock.h"
#include "ptp/measurement.h"
#include "ptp/servo.h"

namespace meridian::ptp {

struct SynchronizerConfig {
  /// Software timestamps: the lower quartile of 16 per direction (queueing
  /// on a software path is skewed). Hardware: see defaults_for().
  FilterConfig filter;
  ServoConfig servo;
  /// delayAsymmetry (§16.8): how much longer master-to-slave is than the
  /// mean path delay, ns.
  int64_t delay_asymmetry_ns = 0;

  /// The defaults for the timestamping in use. With hardware timestamps the
  /// residual noise is white and the servo's own averaging beats any window
  /// statistic, so the newest pair goes straight in (ptp/bench/ptp_servo_bench.cc).
  static SynchronizerConfig defaults_for(bool hardware_timestamps);
};

class ClockSynchronizer {
 public:
  ClockSynchronizer(PtpClock& clock, const SynchronizerConfig& config);

  /// A Sync (one-step) or Sync + Follow_Up (two-step): the master's origin
  /// time `t1`, our receive timestamp taken at base `base_rx`, the summed
  /// correctionFields in ns. `base_now` is when the servo's decision takes
  /// effect. Returns what the servo did (state kUnlocked and no change
  /// while the delay is still unknown).
  ServoAction on_sync(int64_t t1, int64_t base_rx, int64_t correction_ns, double interval_s, int64_t base_now);
  /// A Delay_Req we sent at our time `t3` (base `base_t3`) and the master's
  /// receive time `t4` from the Delay_Resp, with its correctionField in ns.
  void on_delay(int64_t t3, int64_t base_t3, int64_t t4, int64_t correction_ns);
  /// P2P: the measured link delay.
  void on_peer_delay(int64_t delay_ns) { measurement_.set_peer_delay(delay_ns); }
  /// The master is gone: hold the best frequency estimate.
  void holdover(int64_t base_now);
  /// A new master: start over (the clock keeps its time and frequency).
  void reset();

  const Servo& servo() const { return servo_; }
  const PtpClock& clock() const { return clock_; }
  /// The last offset from master and mean path delay, ns.
  int64_t offset_ns() const { return offset_; }
  int64_t mean_path_delay_ns() const { return delay_; }
  uint64_t samples() const { return samples_; }

 private:
  void apply(const ServoAction& a, int64_t base_now);
  /// The master rate's uncertainty for packet selection; the PI servo keeps
  /// none, so its filters trust the rate once it is locked.
  double rate_sigma() const;

  PtpClock& clock_;
  SynchronizerConfig config_;
  DelayMeasurement measurement_;
  Servo servo_;
  int64_t offset_ = 0, delay_ = 0;
  uint64_t samples_ = 0;
};

}  // namespace meridian::ptp
