// Per-worker counters: each worker writes only its own block (no atomics
// with lock prefix, no sharing of cache lines); readers on the control lcore
// sum the blocks. Relaxed loads/stores keep the reads tear-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/drop_reasons.h"

namespace meridian::dataplane {

inline constexpr uint16_t kMaxPorts = 32;    // matches RTE_MAX_ETHPORTS in Debian's DPDK
inline constexpr unsigned kMaxWorkers = 64;
inline constexpr size_t kCacheLine = 64;

/// A counter with a single writer: `add` is a plain load+store, not a locked RMW.
class SingleWriterCounter {
 public:
  void add(uint64_t n) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t load() const { return value_.load(std::memory_order_relaxed); }
  SingleWriterCounter& operator++() {
    add(1);
    return *this;
  }

 private:
  std::atomic<uint64_t> value_{0};
};

struct PortCounters {
  SingleWriterCounter rx_packets, rx_bytes, tx_packets, tx_bytes, punted;
  /// Frames received here that left the data path whole or as replicas (a
  /// forward, a flood, the transparent clock's own send): with `punted` and
  /// the drops counted at ingress they account for every received frame.
  SingleWriterCounter forwarded;
  std::array<SingleWriterCounter, kMaxDropReasons> drops;  // by DropId

  void drop(DropId id, uint64_t n = 1) { drops[id].add(n); }
  /// Any module's reason enum (drop_id found by argument-dependent lookup).
  template <class Reason>
  void drop(Reason r, uint64_t n = 1) {
    drops[drop_id(r)].add(n);
  }
};

inline constexpr size_t kMaxStages = 16;
/// One burst in this many has each stage timed (VPP's `show runtime`, by
/// sampling: two TSC reads a stage on every burst would cost more than the
/// cheapest stages themselves). Prime, so that a worker taking turns over
/// 2, 4 or 8 queues still times every one of them.
inline constexpr uint64_t kStageSampleEvery = 61;

/// A stage's sampled cost: the bursts it was timed on, their packets and
/// the TSC cycles it took over them.
struct StageCounters {
  SingleWriterCounter bursts, packets, cycles;
};

struct alignas(kCacheLine) WorkerCounters {
  std::array<PortCounters, kMaxPorts> ports;
  /// By pipeline position (Dataplane::stage_names()).
  std::array<StageCounters, kMaxStages> stages;
  SingleWriterCounter bursts;      // bursts through the pipeline
  SingleWriterCounter burst_packets;
  SingleWriterCounter heartbeat;   // one per poll round; readiness watches it advance
  SingleWriterCounter busy_polls;  // rounds that received at least one packet
  SingleWriterCounter idle_polls;
};

/// Plain snapshot of one port's counters summed over workers.
struct PortTotals {
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0, punted = 0, forwarded = 0;
  std::array<uint64_t, kMaxDropReasons> drops{};  // by DropId

  template <class Reason>
  uint64_t drops_of(Reason r) const {
    return drops[drop_id(r)];
  }
  uint64_t drops_total() const {
    uint64_t t = 0;
    for (auto d : drops) t += d;
    return t;
  }
  /// Drops of frames that arrived on this port (DropStage::kIngress).
  uint64_t ingress_drops() const {
    uint64_t t = 0;
    const size_t n = drop_reason_count();
    for (size_t i = 0; i < n; ++i) t += drop_reason(static_cast<DropId>(i)).stage == DropStage::kIngress ? drops[i] : 0;
    return t;
  }
  void add(const PortCounters& c) {
    rx_packets += c.rx_packets.load();
    rx_bytes += c.rx_bytes.load();
    tx_packets += c.tx_packets.load();
    tx_bytes += c.tx_bytes.load();
    punted += c.punted.load();
    forwarded += c.forwarded.load();
    for (size_t i = 0; i < kMaxDropReasons; ++i) drops[i] += c.drops[i].load();
  }
};

template <class Range>
PortTotals sum_port(const Range& workers, uint16_t port) {
  PortTotals t;
  for (const WorkerCounters& w : workers) t.add(w.ports[port]);
  return t;
}

}  // namespace meridian::dataplane
