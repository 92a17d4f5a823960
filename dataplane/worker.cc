#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "dataplane/egress.h"
#include "net/wire.h"

namespace meridian::dataplane {
namespace {

/// TxBuffer flush: sends a stage's extra packets grouped by port, keeping
/// the order within each port.
void flush_extra(void* owner, TxBuffer& buf) {
  auto& ctx = *static_cast<WorkerContext*>(owner);
  rte_mbuf* group[TxBuffer::kCapacity];
  bool sent[TxBuffer::kCapacity] = {};
  for (uint16_t i = 0; i < buf.count; ++i) {
    if (sent[i]) continue;
    const uint16_t port = buf.port[i];
    uint16_t n = 0;
    uint64_t bytes = 0;
    for (uint16_t k = i; k < buf.count; ++k) {
      if (sent[k] || buf.port[k] != port) continue;
      sent[k] = true;
      group[n++] = buf.pkts[k];
      bytes += rte_pktmbuf_pkt_len(buf.pkts[k]);
    }
    egress_send(ctx, port, group, n, bytes);
  }
}

void send_run(void* owner, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t bytes) {
  egress_send(*static_cast<WorkerContext*>(owner), port, pkts, n, bytes);
}

}  // namespace

void process_burst(WorkerContext& ctx, const ForwardingTables& tables, PacketBatch& b,
                   uint64_t now_tsc) {
  // Received bytes are counted before stages rewrite the packets (encap,
  // decap). Not every PMD sets mbuf->port; the punt dispatch and the QoS
  // ingress-port rules read it.
  // Every stage may then read a whole Ethernet header in the first segment.
  uint64_t rx_bytes = 0;  // also the burst's tx bytes when it leaves whole and as received
  for (uint16_t i = 0; i < b.count; ++i) {
    rte_mbuf* m = b.pkts[i];
    rx_bytes += rte_pktmbuf_pkt_len(m);
    // Most PMDs set it already; storing only where it differs measured about
    // 10 cycles a packet less on xconnect (docs/benchmarks.md).
    if (m->port != b.rx_port) m->port = b.rx_port;
    if (rte_pktmbuf_data_len(m) < net::kEthHeader) [[unlikely]] b.drop(i, DropReason::kRuntFrame);
  }
  ctx.counters->ports[b.rx_port].rx_bytes.add(rx_bytes);
  b.overlay_port = tables.overlay_udp_port;
  ctx.round_tables = &tables;
  ctx.round_now_tsc = now_tsc;

  TxBuffer extra;
  extra.flush_fn = flush_extra;
  extra.send_fn = send_run;
  extra.owner = &ctx;
  const StageContext sctx{tables, now_tsc, ctx.index, &extra, ctx.counters};
  const Pipeline& pipeline = *ctx.pipeline;
  ctx.counters->bursts.add(1);
  ctx.counters->burst_packets.add(b.count);
  if (++ctx.burst_seq % kStageSampleEvery != 0) [[likely]] {
    for (uint8_t k = 0; k < tables.stage_count; ++k) pipeline[tables.stages[k]]->process(b, sctx);
  } else {
    // A sampled burst: each stage timed on its own (what `show runtime` shows).
    StageCounters* sc = ctx.counters->stages.data();
    uint64_t t0 = rte_rdtsc();
    for (uint8_t k = 0; k < tables.stage_count; ++k) {
      const uint8_t s = tables.stages[k];
      pipeline[s]->process(b, sctx);
      const uint64_t t1 = rte_rdtsc();
      sc[s].bursts.add(1);
      sc[s].packets.add(b.count);
      sc[s].cycles.add(t1 - t0);
      t0 = t1;
    }
  }

  // Fast path: the whole burst leaves by one port (a cross-connect, or one
  // flow's egress). Transmit straight from the batch, no regrouping.
  if (b.count && b.verdict[0] == Verdict::kForward) {
    const uint16_t port = b.tx_port[0];
    bool one_port = true;  // no early exit and no mbuf read: the loop vectorizes
    for (uint16_t i = 0; i < b.count; ++i) one_port &= (b.verdict[i] == Verdict::kForward) & (b.tx_port[i] == port);
    if (one_port) {
      // Every packet forwarded, and none rewritten: the bytes received.
      // Otherwise only now are the mbufs read (a consumed one is freed).
      uint64_t bytes = rx_bytes;
      if (!b.as_received()) {
        bytes = 0;
        for (uint16_t i = 0; i < b.count; ++i) bytes += rte_pktmbuf_pkt_len(b.pkts[i]);
      }
      ctx.counters->ports[b.rx_port].forwarded.add(b.count);
      egress_send(ctx, port, b.pkts, b.count, bytes);
      extra.flush();
      return;
    }
  }

  // Group by egress port, keeping the arrival order within each port.
  struct TxGroup {
    uint16_t port;
    uint16_t n;
    uint64_t bytes;
    rte_mbuf* pkts[kMaxBurst];
  };
  TxGroup groups[4];  // a burst rarely fans out wider; overflow flushes early
  uint16_t ngroups = 0;
  rte_mbuf* punt[kMaxBurst];
  uint16_t npunt = 0;
  rte_mbuf* drop[kMaxBurst];
  uint16_t ndrop = 0;
  PortCounters* counters = ctx.counters->ports.data();
  uint16_t nforwarded = 0;
  TxGroup* last = nullptr;  // most bursts go to one port: skip the search

  auto flush = [&](TxGroup& g) {
    egress_send(ctx, g.port, g.pkts, g.n, g.bytes);
    g.n = 0;
  };

  for (uint16_t i = 0; i < b.count; ++i) {
    rte_mbuf* m = b.pkts[i];
    switch (b.verdict[i]) {
      case Verdict::kForward: {
        const uint16_t port = b.tx_port[i];
        TxGroup* g = last;
        if (!g || g->port != port) {
          g = nullptr;
          for (uint16_t k = 0; k < ngroups; ++k) {
            if (groups[k].port == port) g = &groups[k];
          }
        }
        if (!g) {
          if (ngroups == 4) {
            for (uint16_t k = 0; k < ngroups; ++k) flush(groups[k]);
            ngroups = 0;
          }
          g = &groups[ngroups++];
          g->port = port;
          g->n = 0;
          g->bytes = 0;
        }
        g->pkts[g->n++] = m;
        g->bytes += rte_pktmbuf_pkt_len(m);
        last = g;
        ++nforwarded;
        break;
      }
      case Verdict::kPunt:
        punt[npunt++] = m;
        break;
      case Verdict::kDrop:
        counters[b.rx_port].drop(b.reason[i]);
        drop[ndrop++] = m;
        break;
      case Verdict::kConsumed:  // replicated, or sent by the stage itself
        ++nforwarded;
        break;
      case Verdict::kUndecided:
        counters[b.rx_port].drop(DropReason::kNoDecision);
        drop[ndrop++] = m;
        break;
    }
  }
  counters[b.rx_port].forwarded.add(nforwarded);
  for (uint16_t k = 0; k < ngroups; ++k) flush(groups[k]);
  extra.flush();

  if (npunt) {
    const unsigned queued = rte_ring_enqueue_burst(ctx.punt_ring, reinterpret_cast<void**>(punt), npunt, nullptr);
    counters[b.rx_port].punted.add(queued);
    if (queued < npunt) {
      counters[b.rx_port].drop(DropReason::kPuntRingFull, npunt - queued);
      for (unsigned i = queued; i < npunt; ++i) drop[ndrop++] = punt[i];
    }
  }
  if (ndrop) rte_pktmbuf_free_bulk(drop, ndrop);
}

unsigned worker_poll_once(WorkerContext& ctx) {
  const ForwardingTables* tables = ctx.tables->load();
  const uint64_t now = rte_rdtsc();  // one clock read per poll round
  // What the scheduler changes for this table version happens before any
  // packet of the round reaches it; the old version stays alive until our
  // quiescent report below.
  if (ctx.scheduler) ctx.scheduler->round_begin(ctx, *tables, now);
  unsigned received = 0;
  PacketBatch batch;
  for (const RxQueueRef& q : ctx.rx) {
    if (tables->offline(q.port)) continue;
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, batch.pkts, ctx.burst_size);
    if (n == 0) continue;
    received += n;
    ctx.counters->ports[q.port].rx_packets.add(n);  // rx bytes are summed in process_burst
    batch.reset(q.port, n);
    process_burst(ctx, *tables, batch, now);
  }
  const unsigned released = ctx.scheduler ? ctx.scheduler->round_end(ctx, *tables, now) : 0;
  ctx.round_tables = nullptr;
  // `tables` is not used past this point: report quiescence for RCU.
  rte_rcu_qsbr_quiescent(ctx.qsbr, ctx.index);
  ctx.counters->heartbeat.add(1);
  (received ? ctx.counters->busy_polls : ctx.counters->idle_polls).add(1);
  return received + released;
}

int worker_main(void* arg) {
  auto& ctx = *static_cast<WorkerContext*>(arg);
  rte_rcu_qsbr_thread_register(ctx.qsbr, ctx.index);
  rte_rcu_qsbr_thread_online(ctx.qsbr, ctx.index);
  while (!ctx.stop->load(std::memory_order_relaxed)) {
    if (worker_poll_once(ctx) == 0 && ctx.idle_sleep_us) {
      // Going offline while asleep lets RCU reclaim without waiting for us.
      rte_rcu_qsbr_thread_offline(ctx.qsbr, ctx.index);
      rte_delay_us_sleep(ctx.idle_sleep_us);
      rte_rcu_qsbr_thread_online(ctx.qsbr, ctx.index);
    }
  }
  rte_rcu_qsbr_thread_offline(ctx.qsbr, ctx.index);
  rte_rcu_qsbr_thread_unregister(ctx.qsbr, ctx.index);
  return 0;
}

}  // namespace meridian::dataplane
