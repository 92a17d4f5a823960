// Clock servos: turn offset-from-master samples into phase steps and
// frequency settings for a PtpClock. Pure logic over nanoseconds.
//
// Two kinds, chosen per port:
// - kAdaptive (Meridian's default): a PI loop whose gains follow a two-state
//   Kalman filter over (offset, master rate). Gains start near one, so
//   acquisition takes a few samples, and fall to the bandwidth the measured
//   noise and the oscillator's wander justify, so the locked loop averages
//   over many samples. Innovations beyond six sigma are held back as
//   outliers. Three in a row, or a run on one side while the rate is young,
//   say the state itself is wrong (the master moved, or a spike during
//   acquisition spoiled the rate before the filter could tell it from
//   noise), and the filter re-acquires: it takes the offset and re-learns
//   the rate. The learnt noise counts innovations around their mean and at
//   most three sigma, with a model-free floor from the phase's second
//   differences, so no run of innovations talks the filter into ignoring
//   its measurements.
// - kLinuxPi: linuxptp's PI servo (pi.c) from its documented constants, for
//   operators who want ptp4l's behaviour and as the bench baseline:
//   kp = min(kp_scale * T^-0.3, 0.7 / T), ki = min(ki_scale * T^0.4, 0.3 / T),
//   scales 0.1 / 0.001 with software and 0.7 / 0.3 with hardware timestamps;
//   it waits 0.016 / ki seconds before estimating the frequency.
//
// Sign conventions: offset = our clock - master (offsetFromMaster); a step
// adds step_ns to our clock; frequency_ppb is our clock's rate over its base.
#pragma once

#include <array>
#include <cstdint>

namespace meridian::ptp {

enum class ServoState : uint8_t { kUnlocked, kStepped, kLocked, kLockedStable, kHoldover };
const char* servo_state_name(ServoState s);

enum class ServoKind : uint8_t { kAdaptive, kLinuxPi };
const char* servo_kind_name(ServoKind k);

struct ServoConfig {
  ServoKind kind = ServoKind::kAdaptive;
  bool hardware_timestamps = false;
  /// Step instead of slewing when the first offset exceeds this (0: never).
  int64_t first_step_threshold_ns = 20'000;
  /// Step (re-acquire) whenever an offset exceeds this (0: only the first).
  int64_t step_threshold_ns = 0;
  /// The widest rate the servo may set over the base, as ptp4l's
  /// max_frequency (whose default this is): a clock base off by thousands of
  /// ppm (an uncalibrated TSC) must still be followable.
  double max_frequency_ppb = 900'000'000;
  /// locked-stable: measured |offset| below this for `stable_samples`
  /// samples in a row, none of them held back as an outlier.
  int64_t stable_threshold_ns = 1'000;
  uint32_t stable_samples = 8;
  // kLinuxPi: 0 picks linuxptp's defaults for the timestamping mode.
  double pi_kp_scale = 0;
  double pi_ki_scale = 0;
  // kAdaptive: the base oscillator's random-walk frequency noise, ppb^2 per
  // second (0.01: about 1 ppb of wander over 100 s, a server crystal in a
  // steady room). Larger values follow wander faster and average less.
  double wander_ppb2_per_s = 0.01;
};

struct ServoAction {
  ServoState state = ServoState::kUnlocked;
  bool step = false;
  int64_t step_ns = 0;            // add to the clock
  bool set_frequency = false;
  double frequency_ppb = 0;       // the clock's new rate over its base
};

class Servo {
 public:
  explicit Servo(const ServoConfig& config = {}, double current_frequency_ppb = 0);

  /// One sample: `offset_ns` measured when the clock's free-running base read
  /// `base_ns`, with messages every `interval_s` seconds. The base, not the
  /// clock: frequencies are rates over the base, so the time between
  /// samples must be the base's too (over a clock already corrected by
  /// thousands of ppm the difference is ppm in the rate learnt).
  ServoAction sample(int64_t offset_ns, int64_t base_ns, double interval_s);
  /// The master is gone: run on at the best frequency estimate.
  ServoAction enter_holdover();
  /// Back to unlocked, keeping the clock's current frequency as the start.
  void reset(double current_frequency_ppb);

  ServoState state() const { return state_; }
  /// The rate (ppb over the base) that keeps the clock on the master's
  /// frequency, without the phase-correcting part.
  double frequency_estimate_ppb() const;
  /// One-sigma uncertainty of that estimate; 0 when the kind has none.
  double frequency_uncertainty_ppb() const;
  /// Measurement noise the servo currently assumes (one sigma, ns).
  double measurement_noise_ns() const;
  /// Three-sigma bound on the phase error `seconds` into holdover.
  double holdover_error_bound_ns(double seconds) const;
  uint64_t outliers() const { return outliers_; }
  /// Times the adaptive filter found its state inconsistent and re-learnt.
  uint64_t reacquisitions() const { return reacquisitions_; }
  const ServoConfig& config() const { return config_; }

 private:
  ServoAction sample_pi(int64_t offset_ns, int64_t local_ns, double interval_s);
  ServoAction sample_adaptive(int64_t offset_ns, int64_t local_ns, double interval_s);
  ServoAction locked_state(double offset_ns, bool outlier = false);
  /// The model-free noise floor from the phase's second differences.
  void learn_noise_floor(double offset_ns, double dt);
  void reacquire(double innovation);
  double clamp_frequency(double ppb) const;

  ServoConfig config_;
  ServoState state_ = ServoState::kUnlocked;
  uint32_t count_ = 0;           // samples since the last reset
  uint32_t stable_run_ = 0;
  bool first_update_ = true;     // no step or lock yet since construction
  uint64_t outliers_ = 0;
  uint64_t reacquisitions_ = 0;
  double frequency_ = 0;         // last frequency set
  int64_t last_base_ = 0;
  // kLinuxPi
  int64_t pi_offset0_ = 0, pi_local0_ = 0;
  double pi_drift_ = 0;
  // kAdaptive: state (offset ns, master rate ppb) and its covariance.
  double offset_ = 0, rate_ = 0;
  double p00_ = 0, p01_ = 0, p11_ = 0;
  double noise_var_ = 0;         // measurement noise variance, learnt
  double innovation_ewma_ = 0;   // of the innovations' scatter around their mean
  double innovation_mean_ = 0;
  uint32_t outlier_run_ = 0;
  double bias_ = 0;              // EWMA of innovation / its sigma
  // The base-referenced phase (offset minus what our own frequency settings
  // and steps put there) of the last two samples, their spacing, and the
  // newest second differences of it.
  double applied_ns_ = 0;
  double phase_[2] = {0, 0};
  double phase_dt_ = 0;
  uint32_t phases_ = 0;
  static constexpr uint32_t kFloorWindow = 16;
  std::array<double, kFloorWindow> residuals_{};
  uint32_t residual_count_ = 0;
  double noise_floor_var_ = 0;
};

}  // namespace meridian::ptp
