#include "ptp/sim/link_simulator.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace meridian::ptp::sim {
namespace {

constexpr double kNs = 1e9;

// The slave's free-running base: advances at (1 + error) against true time,
// the error taking a random walk. Queried at non-decreasing true times.
class BaseOscillator {
 public:
  BaseOscillator(const LinkConfig& c, std::mt19937_64& rng)
      : error_ppb_(c.base_frequency_error_ppm * 1000), wander_(c.wander_ppb_per_sqrt_s), rng_(rng) {}
  int64_t at(double t) {
    if (t > t_) {
      const double dt = t - t_;
      base_ += dt * kNs * (1 + error_ppb_ * 1e-9);
      if (wander_ > 0) error_ppb_ += std::normal_distribution<double>(0, wander_ * std::sqrt(dt))(rng_);
      t_ = t;
    }
    return static_cast<int64_t>(base_);
  }

 private:
  double t_ = 0, base_ = 1e15;  // the base starts at an arbitrary reading
  double error_ppb_, wander_;
  std::mt19937_64& rng_;
};

}  // namespace

Trace run_link(const LinkConfig& link, const SynchronizerConfig& sync_config, const Observer& observe) {
  std::mt19937_64 rng(link.seed);
  std::mt19937_64 wander_rng(link.seed ^ 0x9e3779b97f4a7c15ull);
  BaseOscillator base(link, wander_rng);
  auto gauss = [&](double sigma) { return sigma > 0 ? std::normal_distribution<double>(0, sigma)(rng) : 0.0; };
  auto one_way = [&] {
    double d = link.fixed_delay_ns;
    if (link.exponential_delay_mean_ns > 0)
      d += std::exponential_distribution<double>(1.0 / link.exponential_delay_mean_ns)(rng);
    return d / kNs;
  };
  const int64_t master_epoch = int64_t{1'700'000'000} * 1'000'000'000;  // true time 0, in PTP ns

  PtpClock clock;
  clock.set_time(base.at(0), master_epoch + static_cast<int64_t>(link.initial_offset_ns));
  ClockSynchronizer sync(clock, sync_config);
  Trace trace;

  auto lost = [&](double t) { return t >= link.master_loss_start_s && t < link.master_loss_end_s; };
  bool in_holdover = false;
  bool spiked = false;
  // A Delay_Req leaves a few milliseconds after the first Sync received once
  // its interval has passed, as Meridian's slave port sends them: each
  // exchange then pairs with a Sync taken moments before.
  double next_sync = link.sync_interval_s, next_delay = 1e300, delay_due = 0;
  while (true) {
    const bool sync_next = next_sync <= next_delay;
    const double t = sync_next ? next_sync : next_delay;
    if (t > link.duration_s) break;
    // Draw every random number first, lost or not, so traces stay aligned.
    const double d = one_way();
    const double noise_slave = gauss(link.timestamp_noise_ns);
    const double noise_master = gauss(link.master_timestamp_noise_ns);
    if (sync_next) {
      next_sync += link.sync_interval_s;
      double rx = t + d + link.asymmetry_ns / kNs;
      if (link.sync_spike_at_s >= 0 && t >= link.sync_spike_at_s && !spiked) {
        rx += link.sync_spike_ns / kNs;
        spiked = true;
      }
      if (lost(t)) {
        if (!in_holdover && t - link.master_loss_start_s >= link.holdover_after_s) {
          sync.holdover(base.at(t));
          in_holdover = true;
        }
        const double error = static_cast<double>(clock.time_at(base.at(t)) - master_epoch) - t * kNs;
        trace.time_s.push_back(t);
        trace.error_ns.push_back(error);
        if (observe) observe(t, error, sync);
        continue;
      }
      in_holdover = false;
      if (t >= delay_due) {
        delay_due = t + link.delay_req_interval_s - link.sync_interval_s / 2;
        next_delay = rx + std::uniform_real_distribution<double>(0.001, 0.010)(rng);
      }
      const int64_t t1 = master_epoch + static_cast<int64_t>(t * kNs + noise_master);
      const int64_t base_rx_true = base.at(rx);
      sync.on_sync(t1, base_rx_true + static_cast<int64_t>(noise_slave), 0, link.sync_interval_s, base_rx_true);
      const double error = static_cast<double>(clock.time_at(base_rx_true) - master_epoch) - rx * kNs;
      trace.time_s.push_back(rx);
      trace.error_ns.push_back(error);
      if (observe) observe(rx, error, sync);
    } else {
      next_delay = 1e300;
      if (lost(t)) continue;
      const int64_t base_tx = base.at(t) + static_cast<int64_t>(noise_slave);
      const int64_t t3 = clock.time_at(base_tx);
      const int64_t t4 = master_epoch + static_cast<int64_t>((t + d) * kNs + noise_master);
      sync.on_delay(t3, base_tx, t4, 0);
    }
  }
  return trace;
}

Summary summarize(const Trace& trace, double lock_bound_ns, double steady_from_s) {
  Summary s;
  if (trace.time_s.empty()) return s;
  size_t last_bad = trace.error_ns.size();
  for (size_t i = trace.error_ns.size(); i-- > 0;) {
    if (std::fabs(trace.error_ns[i]) >= lock_bound_ns) {
      last_bad = i;
      break;
    }
  }
  if (last_bad == trace.error_ns.size()) {
    s.lock_time_s = trace.time_s.front();
  } else if (last_bad + 1 < trace.error_ns.size()) {
    s.lock_time_s = trace.time_s[last_bad + 1];
  }
  if (steady_from_s < 0) steady_from_s = trace.time_s.back() / 2;
  double sum = 0, sum2 = 0;
  size_t n = 0;
  for (size_t i = 0; i < trace.time_s.size(); ++i) {
    if (trace.time_s[i] < steady_from_s) continue;
    sum += trace.error_ns[i];
    sum2 += trace.error_ns[i] * trace.error_ns[i];
    ++n;
  }
  if (n > 0) {
    s.mean_ns = sum / static_cast<double>(n);
    s.rms_ns = std::sqrt(sum2 / static_cast<double>(n));
    s.stdev_ns = std::sqrt(std::max(0.0, s.rms_ns * s.rms_ns - s.mean_ns * s.mean_ns));
  }
  return s;
}

}  // namespace meridian::ptp::sim
