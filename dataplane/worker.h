// The worker poll loop: rx_burst -> pipeline over the burst -> tx_burst with
// bounded retry. No heap, no locks, no logging; every packet that is not
// transmitted is counted under a drop reason.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dataplane/counters.h"
#include "dataplane/pipeline.h"
#include "dataplane/port_scheduler.h"
#include "dataplane/rcu_publisher.h"


namespace meridian::dataplane {

struct RxQueueRef {
  uint16_t port;
  uint16_t queue;
};

/// Everything one worker needs; built by the control lcore before launch and
/// not changed while the worker runs.
struct WorkerContext {
  unsigned index = 0;            // also the worker's TX queue on every port, and RCU thread id
  unsigned lcore = 0;
  std::vector<RxQueueRef> rx;    // queues this worker polls
  uint16_t burst_size = 32;
  unsigned tx_retries = 4;
  unsigned idle_sleep_us = 0;
  const Pipeline* pipeline = nullptr;
  const RcuPublisher<ForwardingTables>* tables = nullptr;
  rte_rcu_qsbr* qsbr = nullptr;
  rte_ring* punt_ring = nullptr;
  WorkerCounters* counters = nullptr;
  const std::atomic<bool>* stop = nullptr;
  /// The egress scheduler of the shaped ports (QoS), this worker's own;
  /// null when no module schedules egress.
  PortScheduler* scheduler = nullptr;

  // Set by the worker at the start of each burst (its own, not shared).
  const ForwardingTables* round_tables = nullptr;
  uint64_t round_now_tsc = 0;
  uint64_t burst_seq = 0;  // picks the bursts whose stages are timed
};

/// Entry point for rte_eal_remote_launch; `arg` is a WorkerContext*.
int worker_main(void* arg);

/// One poll round over the worker's queues (exposed for tests and benches):
/// adopt new QoS plans, receive and process, release what the QoS trees
/// allow. Returns the packets received plus those the trees released.
unsigned worker_poll_once(WorkerContext& ctx);

/// Processes one received burst through the pipeline and disposes of every
/// packet: transmitted, punted or dropped with a counted reason. Adds the
/// burst's bytes to the RX port's rx_bytes (the caller counts rx_packets).
void process_burst(WorkerContext& ctx, const ForwardingTables& tables, PacketBatch& batch,
                   uint64_t now_tsc);

}  // namespace meridian::dataplane
