// A NIC's PTP clock and its hardware timestamps, through DPDK's
// rte_eth_timesync_* API (the DPDK glue; the conversions are timebase.h).
// - Rx: a PMD with timesync enabled latches the receive time of PTP frames
//   and flags the mbuf (RTE_MBUF_F_RX_IEEE1588_TMST, register index in
//   m->timesync); rx_stamp() reads it. Latching NICs (ixgbe, i40e) keep one
//   stamp at a time, so it must be read before the next PTP frame lands:
//   the punt path hands frames to the control lcore within a poll round.
// - Tx: request_tx_stamp() flags the mbuf (RTE_MBUF_F_TX_IEEE1588_TMST);
//   after the send, tx_stamp() polls the latch for a bounded time, as DPDK's
//   ptpclient does. A stale latch is cleared before each request.
// - The clock itself (read_time) free-runs: DPDK 22.11 has no frequency
//   adjust, so Meridian's PtpClock applies phase and frequency on top.
// Every register access holds the clock's lock: status and metrics read the
// clock from the REST thread while the control lcore stamps, and NICs that
// latch the high word on reading the low one must not see two readers.
// Which PMDs have it: real NIC drivers (ixgbe, i40e, ice, igc, e1000,
// dpaa2, ...). None of this machine's virtual devices (net_af_packet,
// net_tap, net_pcap, net_ring, net_null, net_memif) do: they return
// -ENOTSUP, which acquire() reports.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "ptp/timebase.h"

namespace meridian::ptp {

class NicClock {
 public:
  /// Enables the port's PTP clock. One object per port for the process: a
  /// config change's new PTP service shares the old one's, so handing over
  /// never disables the clock under it. Null and `why` when the PMD has none.
  /// `tsc_hz`: the engine's calibrated TSC rate (extrapolating a failed read).
  static std::shared_ptr<NicClock> acquire(uint16_t port_id, uint64_t tsc_hz, std::string& why);
  ~NicClock();  // rte_eth_timesync_disable when the last holder lets go
  NicClock(const NicClock&) = delete;
  NicClock& operator=(const NicClock&) = delete;

  uint16_t port_id() const { return port_id_; }
  /// The NIC clock now (ns). A failed read extrapolates the last good one
  /// on the TSC, and is counted.
  int64_t now();
  /// A fresh (TSC, NIC) pair.
  CrossTimestamp cross_timestamp();
  /// The NIC's receive stamp of `m`; none when the PMD did not stamp it.
  std::optional<int64_t> rx_stamp(const rte_mbuf* m) const;
  /// Asks the NIC to stamp `m` when it leaves; clears a stale latch first.
  void request_tx_stamp(rte_mbuf* m);
  /// The stamp of the frame sent after request_tx_stamp(), polling up to
  /// `wait_us`; none when the NIC gave none in time.
  std::optional<int64_t> tx_stamp(unsigned wait_us);
  uint64_t read_errors() const {
    rte_spinlock_lock(&lock_);
    const uint64_t n = read_errors_;
    rte_spinlock_unlock(&lock_);
    return n;
  }

 private:
  NicClock(uint16_t port_id, uint64_t tsc_hz) : port_id_(port_id), tsc_hz_(tsc_hz) {}
  uint16_t port_id_;
  uint64_t tsc_hz_;
  int64_t read_locked();  // read_time under lock_
  mutable rte_spinlock_t lock_ = RTE_SPINLOCK_INITIALIZER;
  CrossTimestamp last_{};
  bool have_last_ = false;
  uint64_t read_errors_ = 0;
};

}  // namespace meridian::ptp
