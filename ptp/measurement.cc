#include "ptp/measurement.h"

#include <algorithm>

namespace meridian::ptp {

const char* filter_kind_name(FilterKind k) {
  switch (k) {
    case FilterKind::kMinimum: return "minimum";
    case FilterKind::kPercentile: return "percentile";
    case FilterKind::kLatest: return "latest";
    case FilterKind::kLinuxMedian: return "linuxptp_median";
  }
  return "unknown";
}

void DelayMeasurement::Window::push(const Sample& s, uint16_t capacity) {
  ring[next] = s;
  next = static_cast<uint16_t>((next + 1) % capacity);
  if (size < capacity) ++size;
}

const DelayMeasurement::Sample& DelayMeasurement::Window::latest() const {
  return ring[next == 0 ? size - 1 : next - 1];
}

const DelayMeasurement::Sample& DelayMeasurement::Window::before_latest(uint16_t capacity) const {
  return ring[(next + 2 * capacity - 2) % capacity];
}

DelayMeasurement::DelayMeasurement(const FilterConfig& config) : config_(config) {
  config_.window = std::clamp<uint16_t>(config_.window, 1, kMaxWindow);
  config_.percentile = std::clamp(config_.percentile, 0.0, 1.0);
}

void DelayMeasurement::reset() {
  ms_ = Window{};
  sm_ = Window{};
  path_size_ = path_next_ = 0;
  has_pair_ = false;
}

void DelayMeasurement::add_sync(int64_t t1, int64_t t2, int64_t base_t2, int64_t correction_ns) {
  ms_.push({t2 - t1 - correction_ns, base_t2, t2}, config_.window);
}

void DelayMeasurement::add_delay(int64_t t3, int64_t base_t3, int64_t t4, int64_t correction_ns) {
  const int64_t sm = t4 - t3 - correction_ns;
  sm_.push({sm, base_t3, t3}, config_.window);
  if (ms_.size == 0) return;
  const Sample& sync = ms_.latest();
  pair_sync_ = sync;
  pair_sm_ = sm_.latest();
  has_pair_ = true;
  if (config_.kind == FilterKind::kLinuxMedian) {
    // ptp4l pairs the raw timestamps (and forgets its Sync on a step).
    path_delays_[path_next_] = (sync.value + sm) / 2;
    path_next_ = static_cast<uint16_t>((path_next_ + 1) % config_.window);
    if (path_size_ < config_.window) ++path_size_;
  }
}

int64_t DelayMeasurement::select(const Window& w, int sign, int64_t base_now, const PtpClock& clock,
                                 double rate_ppb, double rate_sigma_ppb) const {
  // What our clock did since a sample, minus what the master did: the
  // sample's offset part moved by exactly this much.
  const int64_t clock_now = clock.time_at(base_now);
  auto projected = [&](const Sample& s) {
    const double master_advance = static_cast<double>(base_now - s.base) * (1.0 + rate_ppb * 1e-9);
    const int64_t moved = (clock_now - s.clock) - static_cast<int64_t>(master_advance);
    return s.value + sign * moved;
  };
  if (config_.kind == FilterKind::kLatest) return projected(w.latest());
  const Sample& newest = w.latest();
  const double max_age_ns =
      rate_sigma_ppb > 0 ? config_.projection_budget_ns / (rate_sigma_ppb * 1e-9) : 1e300;
  std::array<int64_t, kMaxWindow> values{};
  uint16_t n = 0;
  for (uint16_t i = 0; i < w.size; ++i) {
    const Sample& s = w.ring[i];
    if (&s == &newest || static_cast<double>(base_now - s.base) <= max_age_ns) values[n++] = projected(s);
  }
  const auto end = values.begin() + n;
  if (config_.kind == FilterKind::kMinimum) return *std::min_element(values.begin(), end);
  const auto nth = values.begin() + static_cast<ptrdiff_t>(config_.percentile * (n - 1) + 0.5);
  std::nth_element(values.begin(), nth, end);
  return *nth;
}

int64_t DelayMeasurement::pair_delay(double master_rate_ppb, double rate_sigma_ppb) const {
  // While the servo does not know the master's rate yet (at start, over a
  // base perhaps thousands of ppm off) the newest two Syncs give it, as
  // ptp4l's rate ratio does: the master's own timestamps (clock - value is
  // t1 + correction, whatever our clock did meanwhile) over the base.
  if (rate_sigma_ppb > 1'000 && ms_.size >= 2) {
    const Sample& last = ms_.latest();
    const Sample& prev = ms_.before_latest(config_.window);
    const int64_t base = last.base - prev.base;
    if (base > 0) {
      const int64_t master = (last.clock - last.value) - (prev.clock - prev.value);
      master_rate_ppb = (static_cast<double>(master) / static_cast<double>(base) - 1.0) * 1e9;
    }
  }
  const double master_advance = static_cast<double>(pair_sm_.base - pair_sync_.base) * (1.0 + master_rate_ppb * 1e-9);
  return (pair_sync_.value + (pair_sm_.clock - pair_sync_.clock) - static_cast<int64_t>(master_advance) +
          pair_sm_.value) / 2;
}

bool DelayMeasurement::estimate(int64_t base_now, const PtpClock& clock, double master_rate_ppb,
                                double rate_sigma_ppb, int64_t& offset_ns, int64_t& delay_ns) const {
  if (ms_.size == 0) return false;
  if (config_.kind == FilterKind::kLinuxMedian && !has_peer_delay_) {
    if (path_size_ == 0) return false;
    std::array<int64_t, kMaxWindow> d{};
    std::copy_n(path_delays_.begin(), path_size_, d.begin());
    // Median as ptp4l's mmedian does: the middle one, or the mean of the two.
    std::sort(d.begin(), d.begin() + path_size_);
    const uint16_t mid = path_size_ / 2;
    delay_ns = path_size_ % 2 ? d[mid] : (d[mid - 1] + d[mid]) / 2;
    offset_ns = ms_.latest().value - delay_ns;
    return true;
  }
  const int64_t ms = config_.kind == FilterKind::kLinuxMedian
                         ? ms_.latest().value
                         : select(ms_, +1, base_now, clock, master_rate_ppb, rate_sigma_ppb);
  if (has_peer_delay_) {
    delay_ns = peer_delay_;
    offset_ns = ms - peer_delay_;
    return true;
  }
  if (sm_.size == 0) return false;
  if (rate_sigma_ppb * 1e-9 * static_cast<double>(base_now - sm_.latest().base) > config_.projection_budget_ns) {
    if (!has_pair_) return false;
    delay_ns = pair_delay(master_rate_ppb, rate_sigma_ppb);
    offset_ns = ms_.latest().value - delay_ns;
    return true;
  }
  const int64_t sm = select(sm_, -1, base_now, clock, master_rate_ppb, rate_sigma_ppb);
  offset_ns = (ms - sm) / 2;
  delay_ns = (ms + sm) / 2;
  return true;
}

}  // namespace meridian::ptp
