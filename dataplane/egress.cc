#include "dataplane/egress.h"

#include <rte_ethdev.h>

#include "dataplane/tables.h"

namespace meridian::dataplane {

uint16_t egress_transmit(WorkerContext& lane, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t bytes,
                         unsigned retries) {
  const int16_t queue = lane.tx_queue[port];
  if (queue < 0 || n == 0) return 0;
  const auto q = static_cast<uint16_t>(queue);
  uint16_t sent = rte_eth_tx_burst(port, q, pkts, n);
  for (unsigned attempt = 0; sent < n && attempt < retries; ++attempt) {
    sent = static_cast<uint16_t>(sent + rte_eth_tx_burst(port, q, pkts + sent, n - sent));
  }
  for (uint16_t i = sent; i < n; ++i) bytes -= rte_pktmbuf_pkt_len(pkts[i]);
  count_transmitted(lane.counters->ports[port], sent, bytes);
  return sent;
}

uint16_t egress_send(WorkerContext& lane, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t bytes,
                     EgressTiming timing) {
  PortCounters& c = lane.counters->ports[port];
  const ForwardingTables* t = lane.round_tables;
  if (t && t->offline(port)) {  // its device may be closing: never touch it
    c.drop(DropReason::kPortDown, n);
    rte_pktmbuf_free_bulk(pkts, n);
    return 0;
  }
  if (timing == EgressTiming::kScheduled && t && t->any_shaped && port < kMaxPorts && t->shaped[port] &&
      lane.scheduler) {
    return lane.scheduler->submit(lane, *t, port, pkts, n, lane.round_now_tsc);
  }
  const uint16_t sent = egress_transmit(lane, port, pkts, n, bytes, lane.tx_retries);
  if (sent < n) {
    const DropReason why = lane.tx_queue[port] < 0 ? DropReason::kNoControlQueue
                           : lane.control            ? DropReason::kControlTxFull
                                                     : DropReason::kTxFull;
    c.drop(why, n - sent);
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
  }
  return sent;
}

}  // namespace meridian::dataplane
