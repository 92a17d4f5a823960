// A simulated master, link and slave oscillator for the servo and filter
// tests and the servo bench. The master is ideal (its time is true time);
// the slave's base oscillator runs off by a fixed error plus a random walk;
// each direction of the link adds a fixed delay plus optional exponential
// queueing; the slave's timestamps carry white noise (software or hardware
// timestamping). Every random draw depends only on the seed and the event
// times, never on what the servo does, so two servos on the same seed see
// identical traces.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ptp/synchronizer.h"

namespace meridian::ptp::sim {

struct LinkConfig {
  double sync_interval_s = 1.0;
  double delay_req_interval_s = 1.0;
  double duration_s = 600;
  double base_frequency_error_ppm = 50;
  double wander_ppb_per_sqrt_s = 0.1;     // random-walk frequency noise of the base
  double timestamp_noise_ns = 500;        // white, one sigma, on the slave's timestamps
  double master_timestamp_noise_ns = 0;
  double fixed_delay_ns = 30'000;         // each direction
  double exponential_delay_mean_ns = 0;   // queueing, each direction, independent
  double asymmetry_ns = 0;                // extra master-to-slave delay
  double sync_spike_at_s = -1;            // the first Sync sent from then on is delayed
  double sync_spike_ns = 0;               // by this much (a host scheduling spike)
  double initial_offset_ns = 2'500'000;   // slave clock minus master at start
  double master_loss_start_s = -1;        // no messages in [start, end)
  double master_loss_end_s = -1;
  double holdover_after_s = 3;            // how long the port waits before holdover
  uint64_t seed = 1;
};

struct Trace {
  std::vector<double> time_s;   // true time of each Sync receipt (or loss)
  std::vector<double> error_ns; // our clock minus true time, after the servo acted
};

struct Summary {
  double lock_time_s = -1;  // from then on |TE| < the lock bound; -1: never
  double mean_ns = 0;       // over the steady window (second half of the run)
  double rms_ns = 0;        // of TE around zero over the steady window
  double stdev_ns = 0;
};

/// Called after each Sync is processed: true time, TE, the synchronizer.
using Observer = std::function<void(double time_s, double error_ns, const ClockSynchronizer&)>;

Trace run_link(const LinkConfig& link, const SynchronizerConfig& sync, const Observer& observe = nullptr);
Summary summarize(const Trace& trace, double lock_bound_ns = 1000, double steady_from_s = -1);

}  // namespace meridian::ptp::sim
