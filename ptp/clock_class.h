// Which clockClass a clock announces (IEEE 1588-2019 §7.6.2.5; ITU-T
// G.8275.1/G.8275.2 Table 6 for the telecom profiles), from its role and
// how its time is held:
//   grandmaster, reference locked            6
//   grandmaster, holdover within spec        7
//   grandmaster, holdover out of spec      140 telecom, 248 otherwise
//   boundary clock, holdover within spec   135
//   boundary clock, holdover out of spec   165 telecom, 248 otherwise
//   anything free-running or never locked  248 (slave-only: 255)
// "Within spec" means the servo's three-sigma bound on the phase error
// accumulated since holdover began is still below the configured limit.
#pragma once

#include <cstdint>

namespace meridian::ptp {

enum class ClockRole : uint8_t { kGrandmaster, kBoundary, kSlaveOnly };

struct HoldoverPolicy {
  bool telecom = false;            // G.8275.x class numbers
  double holdover_spec_ns = 1000;  // the phase error holdover may reach
};

enum class TimeSource : uint8_t { kFreeRunning, kLocked, kHoldover };
inline const char* time_source_name(TimeSource s) {
  return s == TimeSource::kLocked ? "locked" : s == TimeSource::kHoldover ? "holdover" : "free_running";
}

inline uint8_t announced_clock_class(ClockRole role, TimeSource source, double holdover_error_bound_ns,
                                     const HoldoverPolicy& policy) {
  if (role == ClockRole::kSlaveOnly) return 255;
  const bool in_spec = holdover_error_bound_ns <= policy.holdover_spec_ns;
  if (role == ClockRole::kGrandmaster) {
    if (source == TimeSource::kLocked) return 6;
    if (source == TimeSource::kHoldover) return in_spec ? 7 : (policy.telecom ? 140 : 248);
    return 248;
  }
  if (source == TimeSource::kHoldover) return in_spec ? 135 : (policy.telecom ? 165 : 248);
  return 248;
}

}  // namespace meridian::ptp
