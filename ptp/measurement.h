// From timestamps to offset and path delay: the slave side of the E2E and
// P2P delay mechanisms (IEEE 1588-2019 §11.3, §11.4), with packet selection
// that removes the bias and most of the noise queueing delay adds.
//
// Each direction keeps a window of recent one-way measurements:
//   master-to-slave  ms = t2 - t1 - correction  (= offset + delay)
//   slave-to-master  sm = t4 - t3 - correction  (= delay - offset)
// Before selecting, every stored value is carried forward to "now" through
// what the clock did since (its steps and frequency changes, known exactly)
// minus what the master did (its rate, as the servo estimates it). So
// measurements taken before a servo correction still compare.
//
// Selection per direction:
// - kMinimum: the least queued packet ("lucky packet"); offset and delay
//   come from the two minima. Unbiased when both directions queue alike.
// - kPercentile: the p-th percentile, trading noise for outlier resistance.
// - kLatest: the newest pair, no filtering.
// - kLinuxMedian: ptp4l's tsproc: offset = latest ms - moving median of
//   the path delays (delay_filter_length 10), the bench baseline.
#pragma once

#include <array>
#include <cstdint>

#include "ptp/clock.h"

namespace meridian::ptp {

enum class FilterKind : uint8_t { kMinimum, kPercentile, kLatest, kLinuxMedian };
const char* filter_kind_name(FilterKind k);

struct FilterConfig {
  FilterKind kind = FilterKind::kPercentile;
  uint16_t window = 16;       // per direction, at most kMaxWindow
  double percentile = 0.25;   // kPercentile: the lower quartile
  /// How far the rate's uncertainty may move a stored measurement before it
  /// stops counting, ns.
  double projection_budget_ns = 20;
};

class DelayMeasurement {
 public:
  static constexpr uint16_t kMaxWindow = 128;
  explicit DelayMeasurement(const FilterConfig& config = {});

  /// A Sync (with its Follow_Up): master origin `t1`, our receive time `t2`
  /// read at base `base_t2`, correctionField in ns.
  void add_sync(int64_t t1, int64_t t2, int64_t base_t2, int64_t correction_ns);
  /// A Delay_Req/Delay_Resp pair: our send time `t3` read at `base_t3`, the
  /// master's receive time `t4` and the Delay_Resp correctionField in ns.
  /// Paired with the latest Sync; the pair's delay is computed when asked
  /// (pair_delay), with the rate known then.
  void add_delay(int64_t t3, int64_t base_t3, int64_t t4, int64_t correction_ns);
  /// P2P: the link delay the peer-delay mechanism measured; offsets then
  /// come from the master-to-slave direction alone.
  void set_peer_delay(int64_t delay_ns) { peer_delay_ = delay_ns; has_peer_delay_ = true; }

  /// Offset and mean path delay at base time `base_now`, given the clock and
  /// the servo's estimate of the master's rate over the base with its
  /// one-sigma uncertainty. Stored measurements old enough for that
  /// uncertainty to move them by more than `projection_budget_ns` sit out.
  /// While even the newest slave-to-master measurement is that stale (the
  /// rate is still unknown), the offset is the newest Sync's minus the path
  /// delay of the newest Delay exchange and the Sync just before it, which
  /// no rate error can bias. False until
  /// both directions (or the peer delay) have a measurement.
  bool estimate(int64_t base_now, const PtpClock& clock, double master_rate_ppb, double rate_sigma_ppb,
                int64_t& offset_ns, int64_t& delay_ns) const;
  void reset();
  /// Drops the stored Sync measurements (after a step, for kLinuxMedian).
  void forget_syncs() { ms_ = Window{}; }

 private:
  struct Sample {
    int64_t value = 0;  // ms or sm
    int64_t base = 0;   // when it was taken
    int64_t clock = 0;  // our clock then
  };
  struct Window {
    std::array<Sample, kMaxWindow> ring{};
    uint16_t size = 0, next = 0;
    void push(const Sample& s, uint16_t capacity);
    const Sample& latest() const;
    const Sample& before_latest(uint16_t capacity) const;
  };
  int64_t select(const Window& w, int sign, int64_t base_now, const PtpClock& clock, double rate_ppb,
                 double rate_sigma_ppb) const;

  FilterConfig config_;
  Window ms_, sm_;
  /// The newest Delay exchange (its slave-to-master sample) and the Sync
  /// just before it: their path delay, no rate error can bias beyond the few
  /// milliseconds between them. Computed when asked, with the best rate
  /// known then.
  Sample pair_sync_{}, pair_sm_{};
  bool has_pair_ = false;
  int64_t pair_delay(double master_rate_ppb, double rate_sigma_ppb) const;
  std::array<int64_t, kMaxWindow> path_delays_{};  // kLinuxMedian
  uint16_t path_size_ = 0, path_next_ = 0;
  int64_t peer_delay_ = 0;
  bool has_peer_delay_ = false;
};

}  // namespace meridian::ptp
