// The one way out. Every packet Meridian transmits leaves through here, from
// a worker (forwarded bursts, packets stages create) or from the control
// lcore (ARP/ND, PTP messages):
//
//   egress_send(lane, port, ...)
//     port offline?        -> dropped, port_down
//     port shaped (QoS)?   -> the lane's PortScheduler: queued in the port's
//                             tree (or handed to the worker that owns it),
//                             released later through egress_transmit
//     otherwise            -> egress_transmit
//   egress_transmit(lane, port, ...)  rte_eth_tx_burst on the lane's queue
//                                      of the port; tx counted here, once
//
// A lane is one lcore's side of every port (WorkerContext): a worker sends
// on its own TX queue of each port; the control lcore's lane on each port's
// control queue. The transparent clock's stamped send, the one frame that
// leaves by another wire (the kernel socket that stamps it), is decided
// after the QoS choice (it leaves shaped ports to the shaper) and counts
// with count_transmitted, like egress_transmit.
#pragma once

#include <cstdint>
#include <functional>

#include <rte_mbuf.h>

#include "dataplane/counters.h"
#include "dataplane/worker.h"

namespace meridian::dataplane {

/// How a frame may be delayed on its way out.
enum class EgressTiming : uint8_t {
  /// Through the port's scheduler when the port is shaped.
  kScheduled,
  /// Its transmit time is measured as it is sent (a PTP event message): a
  /// shaper's queue would put unmeasured time between the stamp and the
  /// wire, so it goes to the lane's queue now, ahead of the tree (switches
  /// give PTP event traffic a strict-priority queue for the same reason).
  /// The control lane sends everything so while the workers are stopped.
  kTimestamped,
};

/// Sends `n` packets (`bytes` in total) to `port` from `lane`: see above.
/// The lane's `round_tables` and `round_now_tsc` say which table version
/// and time apply. Every packet ends sent, queued or counted as a drop;
/// returns how many were sent or queued.
uint16_t egress_send(WorkerContext& lane, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t bytes,
                     EgressTiming timing = EgressTiming::kScheduled);

/// The wire: rte_eth_tx_burst on the lane's queue of `port`, retried up to
/// `retries` more times. Counts what left (`bytes`: all n packets' length)
/// and returns how many; the rest stay in pkts[sent..n) for the caller (a
/// worker drops them as tx_full, the QoS tree keeps them queued).
uint16_t egress_transmit(WorkerContext& lane, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t bytes,
                         unsigned retries);

/// Sends frames from the control lcore through egress_send on its lane (a
/// shaped port's tree unless kTimestamped, else the port's control TX queue); returns how many left or were queued (the rest
/// are freed and counted).
using ControlTransmit = std::function<uint16_t(uint16_t port_id, rte_mbuf** pkts, uint16_t n, EgressTiming timing)>;

/// The one place a transmit is counted.
inline void count_transmitted(PortCounters& c, uint64_t packets, uint64_t bytes) {
  c.tx_packets.add(packets);
  c.tx_bytes.add(bytes);
}

}  // namespace meridian::dataplane
