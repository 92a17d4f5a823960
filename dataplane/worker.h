// The worker poll loop: rx_burst -> pipeline over the burst -> tx_burst with
// bounded retry. No heap, no locks, no logging; every packet that is not
// transmitted is counted under a drop reason.
#pragma once

#include <array>
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
/// not changed while the worker runs. The control lcore has one too, its
/// lane out of every port (dataplane/egress.h), with `control` set.
struct WorkerContext {
  unsigned index = 0;            // RCU thread id and counter block (the control lane: the last)
  unsigned lcore = 0;
  bool control = false;          // the control lcore's lane, not a worker
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

  /// The queue this lcore transmits on, per port: a worker's own (its
  /// index) on every port; the control lane's the port's control queue,
  /// -1 where the port has none. (Last: the fields above fill the first lines.)
  std::array<int16_t, kMaxPorts> tx_queue{};
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
