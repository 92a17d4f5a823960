// Servo bench: Meridian's adaptive servo and packet selection against
// linuxptp's PI servo with ptp4l's median delay filter, on identical
// simulated traces (same seed, same delays, same noise, same oscillator).
// Reports, per scenario, the medians over seeds of: time until |TE| stays
// below 1 us, steady-state rms and mean of TE (second half of the run).
// Prints a table and, with --json, one JSON document.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ptp/sim/link_simulator.h"

using namespace meridian::ptp;

namespace {

struct Scenario {
  const char* name;
  double sync_hz;
  double noise_ns;
  double exp_mean_ns;
  bool hardware;
  double spike_ns = 0;  // one Sync delayed this much, 1..8 s into the run (by seed)
  double base_ppm = 50;  // the slave base's frequency error
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

SynchronizerConfig meridian_config(bool hw) { return SynchronizerConfig::defaults_for(hw); }

SynchronizerConfig linuxptp_config(bool hw) {
  SynchronizerConfig c;
  c.servo.kind = ServoKind::kLinuxPi;
  c.servo.hardware_timestamps = hw;
  c.filter.kind = FilterKind::kLinuxMedian;
  c.filter.window = 10;  // delay_filter_length
  return c;
}

struct Result {
  double lock_s, rms_ns, mean_ns, never_locked;
};

Result run(const Scenario& s, const SynchronizerConfig& config, int seeds) {
  std::vector<double> lock, rms, mean;
  int never = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    sim::LinkConfig link;
    link.sync_interval_s = 1.0 / s.sync_hz;
    link.delay_req_interval_s = 1.0;  // logMinDelayReqInterval 0
    link.timestamp_noise_ns = s.noise_ns;
    link.exponential_delay_mean_ns = s.exp_mean_ns;
    link.seed = static_cast<uint64_t>(seed);
    link.base_frequency_error_ppm = s.base_ppm;
    if (s.spike_ns > 0) {
      link.sync_spike_at_s = 1 + (seed - 1) % 8;  // while the servo is still acquiring
      link.sync_spike_ns = s.spike_ns;
    }
    const auto summary = sim::summarize(sim::run_link(link, config));
    if (summary.lock_time_s < 0) {
      ++never;
      lock.push_back(link.duration_s);
    } else {
      lock.push_back(summary.lock_time_s);
    }
    rms.push_back(summary.rms_ns);
    mean.push_back(summary.mean_ns);
  }
  return {median(lock), median(rms), median(mean), static_cast<double>(never)};
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 15;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = std::max(1, std::atoi(argv[++i]));
  }
  const Scenario scenarios[] = {
      {"sw_1hz", 1, 500, 0, false},
      {"sw_8hz", 8, 500, 0, false},
      {"hw_1hz", 1, 20, 0, true},
      {"hw_8hz", 8, 20, 0, true},
      {"sw_1hz_exp10us", 1, 500, 10'000, false},
      {"sw_8hz_exp10us", 8, 500, 10'000, false},
      {"sw_1hz_spike100us", 1, 500, 0, false, 100'000},
      {"sw_1hz_base2000ppm", 1, 500, 0, false, 0, 2000},  // an uncalibrated TSC (DPDK's rounded figure)
  };
  if (!json) {
    std::printf("%-16s %-9s %9s %9s %9s %6s\n", "scenario", "servo", "lock_s", "rms_ns", "mean_ns", "never");
  } else {
    std::printf("{\"seeds\": %d, \"scenarios\": [", seeds);
  }
  bool first = true;
  for (const auto& s : scenarios) {
    const Result m = run(s, meridian_config(s.hardware), seeds);
    const Result l = run(s, linuxptp_config(s.hardware), seeds);
    if (!json) {
      std::printf("%-16s %-9s %9.1f %9.1f %9.1f %6.0f\n", s.name, "meridian", m.lock_s, m.rms_ns, m.mean_ns, m.never_locked);
      std::printf("%-16s %-9s %9.1f %9.1f %9.1f %6.0f\n", "", "linuxptp", l.lock_s, l.rms_ns, l.mean_ns, l.never_locked);
    } else {
      std::printf("%s{\"name\": \"%s\", \"meridian\": {\"lock_s\": %.2f, \"rms_ns\": %.1f, \"mean_ns\": %.1f, \"never_locked\": %.0f}, "
                  "\"linuxptp_pi\": {\"lock_s\": %.2f, \"rms_ns\": %.1f, \"mean_ns\": %.1f, \"never_locked\": %.0f}}",
                  first ? "" : ", ", s.name, m.lock_s, m.rms_ns, m.mean_ns, m.never_locked, l.lock_s, l.rms_ns,
                  l.mean_ns, l.never_locked);
    }
    first = false;
  }
  if (json) std::printf("]}\n");
  return 0;
}
