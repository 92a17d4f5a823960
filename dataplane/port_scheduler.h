// The egress side's extension point: a module that schedules what leaves
// some ports (QoS's HTB trees) implements PortScheduler; the egress path
// (egress.h) gives it every scheduled packet bound for a port the tables
// mark as shaped, and the worker lets it run at the start and end of each
// poll round. One object per lane (a worker, or the control lcore; set in
// Module::setup_worker), so its state is single-threaded.
// One module schedules egress (QoS): a lane has one scheduler slot.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

namespace meridian::dataplane {

struct ForwardingTables;
struct WorkerContext;

class PortScheduler {
 public:
  virtual ~PortScheduler() = default;
  /// Before the round's receives: what must change before a packet of this
  /// round reaches the scheduler (a new plan to adopt).
  virtual void round_begin(WorkerContext& worker, const ForwardingTables& tables, uint64_t now_tsc) = 0;
  /// Takes `n` packets bound for `port` (ForwardingTables::shaped): queued,
  /// handed to the worker that runs the port, or dropped and counted.
  /// Returns how many were queued or handed over. Called by workers and by
  /// the control lcore's lane (`worker.control`), which never owns a port.
  virtual uint16_t submit(WorkerContext& worker, const ForwardingTables& tables, uint16_t port, rte_mbuf** pkts,
                      uint16_t n, uint64_t now_tsc) = 0;
  /// After the receives: releases and transmits what the schedule allows;
  /// returns the packets sent.
  virtual unsigned round_end(WorkerContext& worker, const ForwardingTables& tables, uint64_t now_tsc) = 0;
};

}  // namespace meridian::dataplane
