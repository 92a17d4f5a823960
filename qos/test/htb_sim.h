// A discrete-event harness for the pure HTB scheduler: sources offer packets
// to leaves (always backlogged, or at a fixed rate, each within a time span),
// an optional link serialises what the scheduler releases, and every sent
// packet is recorded with its time so tests can check any window.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qos/htb.h"

namespace meridian::qos::sim {

inline constexpr uint64_t kMs = 1'000'000'000ULL;
inline constexpr uint64_t kSecond = kPicosPerSecond;

inline ClassSpec cls(uint32_t parent, uint64_t rate, uint64_t ceil = 0, uint8_t prio = 0, uint32_t quantum = 0) {
  ClassSpec c;
  c.parent = parent;
  c.rate_bps = rate;
  c.ceil_bps = ceil ? ceil : rate;
  c.burst_bytes = default_burst(c.rate_bps);
  c.cburst_bytes = default_burst(c.ceil_bps);
  c.prio = prio;
  c.quantum = quantum;
  return c;
}

struct Source {
  uint32_t leaf;
  uint32_t length;            // bytes per packet (without overhead)
  double offered_bps = 0;     // 0: keep the leaf backlogged
  uint64_t from = 0, until = UINT64_MAX;
  uint64_t next_arrival = 0;
};

struct Sent {
  uint64_t time;
  uint32_t leaf;
  uint32_t wire;
};

class Sim {
 public:
  Sim(TreeSpec tree, double link_bps = 0, uint32_t capacity = 1 << 16)
      : tree_(tree), sched_(std::move(tree), capacity, 0), link_bps_(link_bps) {}

  HtbScheduler& sched() { return sched_; }
  const TreeSpec& tree() const { return tree_; }
  void add(Source s) {
    s.next_arrival = s.from;
    sources_.push_back(s);
  }
  const std::vector<Sent>& sent() const { return sent_; }
  uint64_t now() const { return now_; }

  void run_until(uint64_t end) {
    while (now_ < end) {
      offer();
      if (auto d = sched_.dequeue(now_)) {
        const uint32_t wire = d->length + sched_.spec(d->leaf).overhead;
        sent_.push_back({now_, d->leaf, wire});
        if (link_bps_ > 0) now_ += static_cast<uint64_t>(wire * 8.0 * kSecond / link_bps_);
        continue;
      }
      uint64_t next = std::min(sched_.next_wakeup(), end);
      for (const auto& s : sources_) {
        if (s.offered_bps > 0 && s.next_arrival < s.until) next = std::min(next, s.next_arrival);
        if (s.offered_bps == 0 && s.from > now_ && s.from < s.until) next = std::min(next, s.from);
      }
      now_ = std::max(now_ + 1, next);
    }
  }

  /// Wire bytes sent by the classes in `leaves` in [from, to).
  uint64_t bytes(const std::vector<uint32_t>& leaves, uint64_t from, uint64_t to) const {
    uint64_t total = 0;
    for (const auto& s : sent_) {
      if (s.time >= from && s.time < to && std::find(leaves.begin(), leaves.end(), s.leaf) != leaves.end()) {
        total += s.wire;
      }
    }
    return total;
  }
  double rate_bps(const std::vector<uint32_t>& leaves, uint64_t from, uint64_t to) const {
    return bytes(leaves, from, to) * 8.0 * kSecond / static_cast<double>(to - from);
  }

 private:
  void offer() {
    for (auto& s : sources_) {
      if (now_ < s.from || now_ >= s.until) continue;
      if (s.offered_bps == 0) {
        while (sched_.queue_packets(s.leaf) < 4) sched_.enqueue(s.leaf, ++id_, s.length, false, now_);
      } else {
        const uint64_t gap = static_cast<uint64_t>((s.length + sched_.spec(s.leaf).overhead) * 8.0 * kSecond / s.offered_bps);
        while (s.next_arrival <= now_ && s.next_arrival < s.until) {
          sched_.enqueue(s.leaf, ++id_, s.length, false, now_);
          s.next_arrival += gap;
        }
      }
    }
  }

  TreeSpec tree_;
  HtbScheduler sched_;
  double link_bps_;
  std::vector<Source> sources_;
  std::vector<Sent> sent_;
  uint64_t now_ = 0;
  uintptr_t id_ = 0;
};

}  // namespace meridian::qos::sim
