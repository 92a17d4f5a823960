#include "ptp/servo.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace meridian::ptp {
namespace {

constexpr double kInitialRateVariance = 1e10;  // (100 ppm)^2: the base's rate is unknown
constexpr double kOutlierSigmas2 = 36.0;       // six sigma, squared
constexpr uint32_t kOutliersBeforeAccepting = 3;
constexpr uint32_t kNoiseLearnAfter = 4;       // samples before the noise estimate adapts
constexpr uint32_t kGateAfter = 4;             // samples before outliers are held back
constexpr double kNoiseLearnWindow = 32.0;
constexpr double kNoiseClipSigmas2 = 9.0;      // an innovation counts at most 3 sigma as noise
constexpr double kBiasWeight = 0.25;           // EWMA of normalised innovations (about 4 samples)
constexpr double kBiasLimit = 2.0;             // its one sigma is 0.38 when the state is right
constexpr uint32_t kAcquisitionSamples = 32;   // the bias test runs while the rate is young
constexpr double kMedianAbsPerSigma = 0.6745;  // median |x| of a unit normal
constexpr uint32_t kFloorAfter = 7;            // second differences before the floor counts
constexpr double kNoiseFloorVariance = 1.0;    // 1 ns: below any timestamp resolution

double initial_noise_variance(bool hardware) { return hardware ? 100.0 * 100.0 : 1000.0 * 1000.0; }
bool beyond(int64_t threshold, int64_t offset) { return threshold > 0 && std::llabs(offset) > threshold; }

}  // namespace

const char* servo_state_name(ServoState s) {
  switch (s) {
    case ServoState::kUnlocked: return "unlocked";
    case ServoState::kStepped: return "stepped";
    case ServoState::kLocked: return "locked";
    case ServoState::kLockedStable: return "locked_stable";
    case ServoState::kHoldover: return "holdover";
  }
  return "unknown";
}

const char* servo_kind_name(ServoKind k) { return k == ServoKind::kLinuxPi ? "linuxptp_pi" : "adaptive"; }

Servo::Servo(const ServoConfig& config, double current_frequency_ppb) : config_(config) {
  reset(current_frequency_ppb);
}

void Servo::reset(double current_frequency_ppb) {
  state_ = ServoState::kUnlocked;
  count_ = 0;
  stable_run_ = 0;
  outlier_run_ = 0;
  bias_ = 0;
  frequency_ = current_frequency_ppb;
  pi_drift_ = -current_frequency_ppb;  // linuxptp's sign: drift is what the clock runs fast by
  rate_ = current_frequency_ppb;
  offset_ = 0;
  p00_ = p01_ = p11_ = 0;
  noise_var_ = initial_noise_variance(config_.hardware_timestamps);
  innovation_ewma_ = noise_var_;
  innovation_mean_ = 0;
  applied_ns_ = 0;
  phases_ = 0;
  residual_count_ = 0;
  noise_floor_var_ = 0;
}

// The master's phase against our base (the measured offset minus what our
// own frequency settings and steps put there) is a straight line plus noise,
// whatever the servo believes. So each sample's residual against the line
// through the two before it measures the noise alone, with a variance of
// (1 + (1 + a)^2 + a^2) sigma^2 for spacing ratio a. Their median over a
// window ignores a spike (it touches three) and needs no state: it is the
// floor under the learnt noise, so the outlier gate is never tighter than
// the scatter the measurements really show. Packet selection smooths the
// offsets, so the floor can sit below the innovations' noise, never above.
void Servo::learn_noise_floor(double z, double dt) {
  const double phase = z - applied_ns_;
  if (phases_ >= 2 && phase_dt_ > 0 && dt > 0) {
    const double a = dt / phase_dt_;
    const double r = phase - phase_[1] - (phase_[1] - phase_[0]) * a;
    residuals_[residual_count_ % kFloorWindow] = std::fabs(r) / std::sqrt(1 + (1 + a) * (1 + a) + a * a);
    ++residual_count_;
  }
  phase_[0] = phase_[1];
  phase_[1] = phase;
  phase_dt_ = dt;
  phases_ = std::min<uint32_t>(phases_ + 1, 2);
  if (residual_count_ < kFloorAfter) return;  // a spike touches three: let more outvote it
  const uint32_t n = std::min(residual_count_, kFloorWindow);
  std::array<double, kFloorWindow> sorted = residuals_;
  std::nth_element(sorted.begin(), sorted.begin() + n / 2, sorted.begin() + n);
  const double sigma = sorted[n / 2] / kMedianAbsPerSigma;
  noise_floor_var_ = sigma * sigma;
}

double Servo::clamp_frequency(double ppb) const {
  return std::clamp(ppb, -config_.max_frequency_ppb, config_.max_frequency_ppb);
}

ServoAction Servo::locked_state(double offset_ns, bool outlier) {
  ServoAction a;
  if (!outlier && config_.stable_threshold_ns > 0 &&
      std::fabs(offset_ns) < static_cast<double>(config_.stable_threshold_ns)) {
    ++stable_run_;
  } else {
    stable_run_ = 0;
  }
  state_ = stable_run_ >= config_.stable_samples ? ServoState::kLockedStable : ServoState::kLocked;
  a.state = state_;
  return a;
}

ServoAction Servo::sample(int64_t offset_ns, int64_t base_ns, double interval_s) {
  return config_.kind == ServoKind::kLinuxPi ? sample_pi(offset_ns, base_ns, interval_s)
                                             : sample_adaptive(offset_ns, base_ns, interval_s);
}

ServoAction Servo::sample_pi(int64_t offset_ns, int64_t local_ns, double interval_s) {
  const bool hw = config_.hardware_timestamps;
  const double kp_scale = config_.pi_kp_scale > 0 ? config_.pi_kp_scale : (hw ? 0.7 : 0.1);
  const double ki_scale = config_.pi_ki_scale > 0 ? config_.pi_ki_scale : (hw ? 0.3 : 0.001);
  const double kp = std::min(kp_scale * std::pow(interval_s, -0.3), 0.7 / interval_s);
  const double ki = std::min(ki_scale * std::pow(interval_s, 0.4), 0.3 / interval_s);
  const double max = config_.max_frequency_ppb;

  ServoAction a;
  switch (count_) {
    case 0:
      pi_offset0_ = offset_ns;
      pi_local0_ = local_ns;
      count_ = 1;
      state_ = ServoState::kUnlocked;
      break;
    case 1: {
      if (pi_local0_ >= local_ns) {
        count_ = 0;
        state_ = ServoState::kUnlocked;
        break;
      }
      // Wait until the two samples are far enough apart for the integral
      // gain in use (linuxptp: 0.016 / ki seconds, at most 1000 s).
      const double elapsed_s = static_cast<double>(local_ns - pi_local0_) / 1e9 * 1.001;
      if (elapsed_s < std::min(0.016 / ki, 1000.0)) {
        state_ = ServoState::kUnlocked;
        break;
      }
      pi_drift_ += (1e9 - pi_drift_) * static_cast<double>(offset_ns - pi_offset0_) /
                   static_cast<double>(local_ns - pi_local0_);
      pi_drift_ = std::clamp(pi_drift_, -max, max);
      if ((first_update_ && beyond(config_.first_step_threshold_ns, offset_ns)) ||
          beyond(config_.step_threshold_ns, offset_ns)) {
        state_ = ServoState::kStepped;
        a.step = true;
        a.step_ns = -offset_ns;
      } else {
        state_ = ServoState::kLocked;
      }
      first_update_ = false;
      count_ = 2;
      frequency_ = -pi_drift_;
      a.set_frequency = true;
      break;
    }
    default: {
      if (beyond(config_.step_threshold_ns, offset_ns)) {
        count_ = 0;
        state_ = ServoState::kUnlocked;
        break;
      }
      const double ki_term = ki * static_cast<double>(offset_ns);
      double ppb = kp * static_cast<double>(offset_ns) + pi_drift_ + ki_term;
      if (ppb < -max) {
        ppb = -max;
      } else if (ppb > max) {
        ppb = max;
      } else {
        pi_drift_ += ki_term;
      }
      frequency_ = -ppb;
      const ServoState s = locked_state(static_cast<double>(offset_ns)).state;
      a.set_frequency = true;
      a.state = s;
      break;
    }
  }
  a.state = state_;
  a.frequency_ppb = frequency_;
  return a;
}

// The Kalman model: x = (offset, rate). Between samples the offset moves by
// (frequency - rate) * dt, and the rate takes a random walk of
// `wander_ppb2_per_s`. The loop then sets frequency = rate - offset / dt, so
// the predicted offset at the next sample is zero. With a large initial
// covariance the first samples carry gains near one (fast acquisition); as
// the covariance shrinks the gains fall to what noise and wander justify.
ServoAction Servo::sample_adaptive(int64_t offset_ns, int64_t base_ns, double interval_s) {
  ServoAction a;
  const double z = static_cast<double>(offset_ns);
  if (count_ == 0) {
    offset_ = z;
    rate_ = frequency_;
    p00_ = noise_var_;
    p01_ = 0;
    p11_ = kInitialRateVariance;
    last_base_ = base_ns;
    count_ = 1;
    learn_noise_floor(z, 0);
    if ((first_update_ && beyond(config_.first_step_threshold_ns, offset_ns)) ||
        beyond(config_.step_threshold_ns, offset_ns)) {
      a.step = true;
      a.step_ns = -offset_ns;
      applied_ns_ += static_cast<double>(a.step_ns);
      offset_ = 0;
      state_ = ServoState::kStepped;
      first_update_ = false;
    } else {
      state_ = ServoState::kUnlocked;
    }
    a.state = state_;
    return a;
  }
  const double dt = static_cast<double>(base_ns - last_base_) / 1e9;
  if (dt <= 0) {
    a.state = state_;
    return a;
  }
  last_base_ = base_ns;
  applied_ns_ += frequency_ * dt;  // ppb * s = ns

  // Predict.
  const double q = config_.wander_ppb2_per_s;
  offset_ += (frequency_ - rate_) * dt;
  const double n00 = p00_ - 2 * dt * p01_ + dt * dt * p11_ + q * dt * dt * dt / 3;
  const double n01 = p01_ - dt * p11_ - q * dt * dt / 2;
  const double n11 = p11_ + q * dt;
  p00_ = n00;
  p01_ = n01;
  p11_ = n11;

  if (count_ >= 2 && beyond(config_.step_threshold_ns, offset_ns)) {
    // The master's time moved: step to it, keep the rate.
    a.step = true;
    a.step_ns = -offset_ns;
    applied_ns_ += static_cast<double>(a.step_ns);
    phases_ = 0;  // the master's phase jumped: a new line
    offset_ = 0;
    p00_ = noise_var_;
    p01_ = 0;
    stable_run_ = 0;
    state_ = ServoState::kStepped;
    frequency_ = clamp_frequency(rate_);
    a.set_frequency = true;
    a.frequency_ppb = frequency_;
    a.state = state_;
    return a;
  }

  learn_noise_floor(z, dt);
  noise_var_ = std::max(noise_var_, noise_floor_var_);
  const double innovation = z - offset_;
  const double innovation_var = p00_ + noise_var_;
  bool update = true;
  const bool outlier = count_ >= kGateAfter && innovation * innovation > kOutlierSigmas2 * innovation_var;
  // While the rate is young, a spike the gate could not yet tell from noise
  // leaves the state wrong: the innovations then run on one side, each
  // inside the gate but together far from zero. (Once settled, packet
  // selection makes innovations correlated enough to trip this; the gate
  // and the three-in-a-row rule guard that phase.)
  // The second sample's innovation is the rate being learnt (thousands of
  // sigma of the prior over a base far off), not a bias: it does not count.
  if (!outlier && count_ >= 2) bias_ += kBiasWeight * (innovation / std::sqrt(innovation_var) - bias_);
  const bool biased = count_ >= kGateAfter && count_ < kAcquisitionSamples && std::fabs(bias_) > kBiasLimit;
  if (outlier) {
    ++outliers_;
    if (++outlier_run_ < kOutliersBeforeAccepting) {
      update = false;
    } else {
      reacquire(innovation);  // three in a row: the state is wrong, not the samples
    }
  } else if (biased) {
    reacquire(innovation);
  } else {
    outlier_run_ = 0;
    if (count_ >= kNoiseLearnAfter && p00_ <= noise_var_) {
      // Only while the state is known better than the noise: otherwise the
      // innovation says little about the noise. Around the innovations' own
      // mean and clipped at 3 sigma, so a wrong state's steady innovations
      // never pass for noise (the filter would then trust that state ever
      // more: the runaway this replaced).
      const double alpha = 1.0 / std::min<double>(count_, kNoiseLearnWindow);
      innovation_mean_ += alpha * (innovation - innovation_mean_);
      const double scatter = (innovation - innovation_mean_) * (innovation - innovation_mean_);
      const double heard = std::min(scatter, kNoiseClipSigmas2 * innovation_var) - p00_;
      innovation_ewma_ += alpha * (heard - innovation_ewma_);
      noise_var_ = std::max({kNoiseFloorVariance, innovation_ewma_, noise_floor_var_});
    }
  }
  if (update) {
    const double s = p00_ + noise_var_;
    const double k0 = p00_ / s, k1 = p01_ / s;
    offset_ += k0 * innovation;
    rate_ += k1 * innovation;
    const double u00 = (1 - k0) * p00_, u01 = (1 - k0) * p01_, u11 = p11_ - k1 * p01_;
    p00_ = u00;
    p01_ = u01;
    p11_ = u11;
  }
  rate_ = clamp_frequency(rate_);
  const double horizon = std::max(interval_s, dt);
  frequency_ = clamp_frequency(rate_ - offset_ / horizon);
  ++count_;
  first_update_ = false;
  a = locked_state(z, !update);
  a.set_frequency = true;
  a.frequency_ppb = frequency_;
  return a;
}

// The master moved, or a spike during acquisition spoiled the rate: take
// the offset with a gain near one and re-learn the rate from the samples to
// come.
void Servo::reacquire(double innovation) {
  p00_ += innovation * innovation;
  p01_ = 0;
  p11_ = std::max(p11_, kInitialRateVariance);
  outlier_run_ = 0;
  bias_ = 0;
  ++reacquisitions_;
}

ServoAction Servo::enter_holdover() {
  ServoAction a;
  state_ = ServoState::kHoldover;
  stable_run_ = 0;
  frequency_ = clamp_frequency(frequency_estimate_ppb());
  a.state = state_;
  a.set_frequency = true;
  a.frequency_ppb = frequency_;
  return a;
}

double Servo::frequency_estimate_ppb() const {
  return config_.kind == ServoKind::kLinuxPi ? -pi_drift_ : rate_;
}

double Servo::frequency_uncertainty_ppb() const {
  if (config_.kind == ServoKind::kLinuxPi || count_ < 2) return 0;
  return std::sqrt(std::max(0.0, p11_));
}

double Servo::measurement_noise_ns() const { return std::sqrt(noise_var_); }

double Servo::holdover_error_bound_ns(double t) const {
  const double q = config_.wander_ppb2_per_s;
  // The PI servo keeps no covariance: assume its integral is good to 10 ppb.
  const double p11 = config_.kind == ServoKind::kLinuxPi ? 100.0 : p11_;
  const double p01 = config_.kind == ServoKind::kLinuxPi ? 0.0 : p01_;
  const double p00 = config_.kind == ServoKind::kLinuxPi ? noise_var_ : p00_;
  const double var = p00 - 2 * t * p01 + t * t * p11 + q * t * t * t / 3;
  return 3 * std::sqrt(std::max(0.0, var));
}

}  // namespace meridian::ptp
