#include "dataplane/time_base.h"

#include <time.h>

#include <cmath>
#include <thread>

#include <rte_cycles.h>

#include "config/log.h"

namespace meridian::dataplane {
namespace {

int64_t monotonic_raw_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double ppm(double value, double reference) { return (value - reference) / reference * 1e6; }

}  // namespace

TimeBase& TimeBase::instance() {
  static TimeBase base;
  return base;
}

TscCalibrator::Sample TimeBase::sample(int tries) {
  TscCalibrator::Sample best;
  best.bracket_ticks = UINT64_MAX;
  for (int i = 0; i < tries; ++i) {
    const uint64_t before = rte_rdtsc_precise();
    const int64_t ref = monotonic_raw_ns();
    const uint64_t after = rte_rdtsc_precise();
    if (after - before < best.bracket_ticks) best = {before + (after - before) / 2, ref, after - before};
  }
  return best;
}

uint64_t TimeBase::hz() const { return calibrated_ ? hz_ : rte_get_tsc_hz(); }
uint64_t TimeBase::dpdk_hz() const { return dpdk_hz_ ? dpdk_hz_ : rte_get_tsc_hz(); }

void TimeBase::calibrate(std::chrono::milliseconds span) {
  if (calibrated_) return;
  dpdk_hz_ = rte_get_tsc_hz();
  estimate_ = TscCalibrator{};
  estimate_.add(sample());
  std::this_thread::sleep_for(span);
  estimate_.add(sample());
  hz_ = static_cast<uint64_t>(std::llround(estimate_.hz()));
  calibrated_ = hz_ > 0;
  if (!calibrated_) hz_ = dpdk_hz_;
  last_refine_ = std::chrono::steady_clock::now();
  const double off = ppm(static_cast<double>(dpdk_hz_), static_cast<double>(hz_));
  const nlohmann::json fields = {{"tsc_hz", hz_},
                                 {"uncertainty_ppm", estimate_.uncertainty_ppm()},
                                 {"dpdk_tsc_hz", dpdk_hz_},
                                 {"dpdk_error_ppm", off},
                                 {"reference", "CLOCK_MONOTONIC_RAW"}};
  if (std::fabs(off) > 100) {
    log::warn("timebase", "DPDK's TSC frequency is off; every clock uses the calibrated one", fields);
  } else {
    log::info("timebase", "TSC calibrated", fields);
  }
}

void TimeBase::refine(std::chrono::seconds every) {
  if (!calibrated_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_refine_ < every) return;
  last_refine_ = now;
  estimate_.add(sample(3));
  const double drift = ppm(estimate_.hz(), static_cast<double>(hz_));
  if (!warned_drift_ && std::fabs(drift) > 10 && estimate_.uncertainty_ppm() < 1) {
    warned_drift_ = true;
    log::warn("timebase", "the TSC runs more than 10 ppm from the rate calibrated at start-up; restart to recalibrate",
              {{"tsc_hz", hz_}, {"estimate_hz", estimate_.hz()}, {"drift_ppm", drift}});
  }
}

nlohmann::json TimeBase::status() const {
  return {{"reference", "CLOCK_MONOTONIC_RAW"},
          {"calibrated", calibrated_},
          {"tsc_hz", hz()},
          {"dpdk_tsc_hz", dpdk_hz()},
          {"dpdk_error_ppm", ppm(static_cast<double>(dpdk_hz()), static_cast<double>(hz()))},
          {"estimate_hz", estimate_.hz()},
          {"estimate_uncertainty_ppm", estimate_.uncertainty_ppm()},
          {"estimate_span_seconds", estimate_.span_seconds()},
          {"in_use_error_ppm", estimate_.ready() ? ppm(static_cast<double>(hz()), estimate_.hz()) : 0.0}};
}

void TimeBase::metrics(config::MetricsWriter& out) const {
  out.gauge("meridian_timebase_tsc_hertz", "TSC frequency in use: calibrated against CLOCK_MONOTONIC_RAW");
  out.sample({}, static_cast<double>(hz()));
  out.gauge("meridian_timebase_dpdk_tsc_hertz", "TSC frequency DPDK reports (rte_get_tsc_hz), not used for time");
  out.sample({}, static_cast<double>(dpdk_hz()));
  out.gauge("meridian_timebase_dpdk_error_ppm", "DPDK's TSC frequency minus the calibrated one, ppm");
  out.sample({}, ppm(static_cast<double>(dpdk_hz()), static_cast<double>(hz())));
  out.gauge("meridian_timebase_in_use_error_ppm",
            "The rate in use minus the running estimate against CLOCK_MONOTONIC_RAW, ppm");
  out.sample({}, estimate_.ready() ? ppm(static_cast<double>(hz()), estimate_.hz()) : 0.0);
  out.gauge("meridian_timebase_estimate_uncertainty_ppm", "Worst-case error of the running estimate, ppm");
  out.sample({}, estimate_.uncertainty_ppm());
}

}  // namespace meridian::dataplane
