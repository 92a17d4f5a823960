#include "ptp/synchronizer.h"

namespace meridian::ptp {

SynchronizerConfig SynchronizerConfig::defaults_for(bool hardware_timestamps) {
  SynchronizerConfig c;
  c.servo.hardware_timestamps = hardware_timestamps;
  if (hardware_timestamps) c.filter.kind = FilterKind::kLatest;
  return c;
}

ClockSynchronizer::ClockSynchronizer(PtpClock& clock, const SynchronizerConfig& config)
    : clock_(clock), config_(config), measurement_(config.filter), servo_(config.servo, clock.frequency_ppb()) {}

void ClockSynchronizer::reset() {
  measurement_.reset();
  servo_.reset(clock_.frequency_ppb());
}

ServoAction ClockSynchronizer::on_sync(int64_t t1, int64_t base_rx, int64_t correction_ns, double interval_s,
                                       int64_t base_now) {
  const int64_t t2 = clock_.time_at(base_rx);
  measurement_.add_sync(t1, t2, base_rx, correction_ns + config_.delay_asymmetry_ns);
  int64_t offset = 0, delay = 0;
  if (!measurement_.estimate(base_rx, clock_, servo_.frequency_estimate_ppb(), rate_sigma(), offset, delay)) {
    ServoAction none;
    none.state = servo_.state();
    return none;
  }
  offset_ = offset;
  delay_ = delay;
  ++samples_;
  const ServoAction a = servo_.sample(offset, base_rx, interval_s);
  apply(a, base_now);
  return a;
}

void ClockSynchronizer::on_delay(int64_t t3, int64_t base_t3, int64_t t4, int64_t correction_ns) {
  measurement_.add_delay(t3, base_t3, t4, correction_ns - config_.delay_asymmetry_ns);
}

double ClockSynchronizer::rate_sigma() const {
  if (servo_.config().kind == ServoKind::kAdaptive) {
    return servo_.frequency_uncertainty_ppb() > 0 ? servo_.frequency_uncertainty_ppb() : 1e6;
  }
  return servo_.state() == ServoState::kLocked || servo_.state() == ServoState::kLockedStable ? 0 : 1e6;
}

void ClockSynchronizer::holdover(int64_t base_now) { apply(servo_.enter_holdover(), base_now); }

void ClockSynchronizer::apply(const ServoAction& a, int64_t base_now) {
  if (a.set_frequency) clock_.set_frequency(base_now, a.frequency_ppb);
  if (a.step) {
    clock_.step(base_now, a.step_ns);
    // ptp4l forgets its Sync timestamps on a step, so its next path delay
    // never pairs a pre-step Sync with a post-step Delay_Req. The projecting
    // filters carry stored samples across the step instead.
    if (config_.filter.kind == FilterKind::kLinuxMedian) measurement_.forget_syncs();
  }
}

}  // namespace meridian::ptp
