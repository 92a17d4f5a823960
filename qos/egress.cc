#include "qos/egress.h"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include <rte_ethdev.h>

#include "dataplane/egress.h"

namespace meridian::qos {

using dataplane::DropReason;
using dataplane::kMaxBurst;
using dataplane::PortCounters;

TscClock::TscClock(uint64_t base_tsc, uint64_t tsc_hz)
    : base_(base_tsc),
      mult_(static_cast<uint64_t>((static_cast<unsigned __int128>(kPicosPerSecond) << kShift) / tsc_hz)) {}

namespace {

/// Whether the packet's first segment (where classification reads and
/// rewrites headers) holds bytes another packet holds too.
bool shares_bytes(const rte_mbuf* m) {
  // An indirect mbuf, or one on an external buffer (whose sharing is counted
  // in its shinfo: a clone of a PMD's external buffer is one), or a direct
  // one with clones: taken as shared.
  return !RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) > 1;
}

PrefixMatch compile_prefix(const config::IpPrefix& p) {
  PrefixMatch m;
  m.ip_version = p.address.family;
  m.length = p.length;
  m.bytes = p.address.bytes;
  return m;
}

FlowMatchSpec compile_flow(const config::FlowMatch& f) {
  FlowMatchSpec s;
  s.protocol = f.protocol;
  if (f.src) s.src = compile_prefix(*f.src);
  if (f.dst) s.dst = compile_prefix(*f.dst);
  if (f.src_ports) s.src_ports = RangeMatch{f.src_ports->first, f.src_ports->last};
  if (f.dst_ports) s.dst_ports = RangeMatch{f.dst_ports->first, f.dst_ports->last};
  return s;
}

/// The same tree shape (ids, parents, order): a lightweight change.
bool same_shape(const TreeSpec& a, const std::vector<std::string>& a_ids, const TreeSpec& b,
                const std::vector<std::string>& b_ids) {
  if (a_ids != b_ids || a.classes.size() != b.classes.size()) return false;
  for (size_t i = 0; i < a.classes.size(); ++i) {
    if (a.classes[i].parent != b.classes[i].parent) return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<const QosPlan> build_plan(const config::QosPort& cfg, const PortIdOf& port_id_of,
                                          uint16_t vxlan_udp_port, uint32_t capacity,
                                          const std::shared_ptr<const QosPlan>& previous, uint64_t now_ps,
                                          uint64_t plan_id) {
  auto plan = std::make_shared<QosPlan>();
  plan->source = cfg;
  plan->id = plan_id;
  plan->vxlan_udp_port = vxlan_udp_port;
  for (uint32_t i = 0; i < cfg.classes.size(); ++i) {
    plan->class_ids.push_back(cfg.classes[i].id);
    plan->index_of.emplace(cfg.classes[i].id, i);
  }
  plan->actions.resize(cfg.classes.size());
  for (uint32_t i = 0; i < cfg.classes.size(); ++i) {
    const config::QosClass& c = cfg.classes[i];
    ClassSpec s;
    s.parent = c.parent.empty() ? kNone : plan->index_of.at(c.parent);
    s.rate_bps = c.rate_bps;
    s.ceil_bps = c.ceil_bps.value_or(c.rate_bps);
    s.burst_bytes = c.burst_bytes.value_or(default_burst(s.rate_bps));
    s.cburst_bytes = c.cburst_bytes.value_or(default_burst(s.ceil_bps));
    s.prio = static_cast<uint8_t>(c.prio);
    s.quantum = c.quantum.value_or(0);
    s.overhead = static_cast<uint16_t>(c.overhead);
    s.limit_packets = c.limit_packets;
    s.limit_bytes = c.limit_bytes.value_or(0);
    if (c.ecn) s.ecn = EcnProfile{c.ecn->kmin_bytes, c.ecn->kmax_bytes, c.ecn->pmax};
    plan->tree.classes.push_back(s);
    if (c.dscp_remark) plan->actions[i].dscp_remark = static_cast<int16_t>(*c.dscp_remark);
    plan->actions[i].marks_ce = c.ecn.has_value();
  }
  plan->tree.default_class = plan->index_of.at(cfg.default_class);
  fill_default_quanta(plan->tree);

  std::vector<RuleSpec> rules;
  for (const config::QosRule& r : cfg.rules) {
    RuleSpec s;
    s.leaf = plan->index_of.at(r.class_id);
    for (unsigned d : r.dscp) s.dscp_mask |= uint64_t{1} << d;
    for (unsigned p : r.pcp) s.pcp_mask = static_cast<uint8_t>(s.pcp_mask | 1u << p);
    s.vni = r.vni;
    if (r.ingress_port) {
      // Validation only admits configured ports, which all run: a miss
      // cannot happen, and would match nothing rather than everything.
      s.ingress_port = port_id_of(*r.ingress_port).value_or(dataplane::kMaxPorts);
    }
    s.outer = compile_flow(r.outer);
    if (r.inner) s.inner = compile_flow(*r.inner);
    rules.push_back(s);
  }
  plan->reads_headers = !rules.empty();
  for (uint32_t i = 0; i < cfg.classes.size(); ++i) {
    plan->reads_headers = plan->reads_headers || cfg.classes[i].dscp_remark || cfg.classes[i].ecn;
  }
  plan->classifier = Classifier(std::move(rules), plan->tree.default_class);

  if (previous && same_shape(previous->tree, previous->class_ids, plan->tree, plan->class_ids)) {
    plan->scheduler = previous->scheduler;  // lightweight: the owner updates it in place
  } else {
    plan->scheduler = std::make_shared<HtbScheduler>(plan->tree, capacity, now_ps);
  }
  return plan;
}

ClassSnapshot snapshot_class(const HtbScheduler& s, uint32_t c) {
  ClassSnapshot out;
  out.stats = s.stats(c);
  out.tokens_bytes = s.tokens_bytes(c);
  out.ctokens_bytes = s.ctokens_bytes(c);
  out.queue_packets = s.queue_packets(c);
  out.queue_bytes = s.queue_bytes(c);
  out.mode = s.mode(c);
  return out;
}

EgressPort::EgressPort(uint16_t port, unsigned owner, unsigned handoff_slots) : owner_(owner) {
  if (handoff_slots) {
    // Ring names are unique per process and at most 29 characters.
    static std::atomic<unsigned> rings{0};
    const std::string name = "mrdq_" + std::to_string(getpid()) + "_" + std::to_string(port) + "_" +
                             std::to_string(rings.fetch_add(1));
    // Producers: other workers and the control lcore, which runs syscalls
    // and may be preempted mid-enqueue: with relaxed tail sync (RTS) the
    // other producers do not spin on its tail update at once.
    handoff_ = rte_ring_create(name.c_str(), handoff_slots, static_cast<int>(rte_socket_id()),
                               RING_F_MP_RTS_ENQ | RING_F_SC_DEQ);
    if (!handoff_) throw std::runtime_error(std::string("cannot create the QoS handoff ring: ") + rte_strerror(rte_errno));
  }
}

EgressPort::~EgressPort() {
  release_all();
  rte_ring_free(handoff_);
}

uint16_t EgressPort::hand_off(rte_mbuf** pkts, uint16_t n, PortCounters& counters) {
  const unsigned queued = rte_ring_enqueue_burst(handoff_, reinterpret_cast<void**>(pkts), n, nullptr);
  if (queued < n) {
    counters.drop(Drop::kQosHandoffFull, n - queued);
    rte_pktmbuf_free_bulk(pkts + queued, n - queued);
  }
  return static_cast<uint16_t>(queued);
}

uint16_t EgressPort::enqueue(rte_mbuf** pkts, uint16_t n, uint64_t now_ps, PortCounters& counters) {
  rte_mbuf* dropped[kMaxBurst];
  uint16_t ndropped = 0, unshare_failed = 0;
  const QosPlan& plan = *active_.load(std::memory_order_relaxed);
  HtbScheduler& sched = *plan.scheduler;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    uint8_t* data = rte_pktmbuf_mtod(m, uint8_t*);
    size_t len = rte_pktmbuf_data_len(m);
    PacketKeys keys;
    if (plan.reads_headers) read_packet_keys(data, len, m->port, plan.vxlan_udp_port, keys);
    const uint32_t leaf = plan.classifier.classify(keys);
    const LeafAction& act = plan.actions[leaf];
    if ((act.dscp_remark >= 0 || (act.marks_ce && keys.ecn != 0)) && shares_bytes(m)) [[unlikely]] {
      // It may be rewritten, and its bytes are another packet's too (a
      // flood's local replica): it gets bytes of its own first.
      rte_mbuf* own = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
      rte_pktmbuf_free(m);
      if (!own) {
        counters.drop(Drop::kQosUnshareNoBuffer, 1);
        ++unshare_failed;
        continue;
      }
      m = own;  // the same bytes from the same offset: the keys' offsets hold (rewrites check the length)
      data = rte_pktmbuf_mtod(m, uint8_t*);
      len = rte_pktmbuf_data_len(m);
    }
    const EnqueueResult r =
        sched.enqueue(leaf, reinterpret_cast<uintptr_t>(m), rte_pktmbuf_pkt_len(m), keys.ecn != 0, now_ps);
    if (r == EnqueueResult::kDropped) {
      dropped[ndropped++] = m;
      continue;
    }
    // Rewrites after admission: a dropped packet is left as it arrived.
    if (const int16_t dscp = plan.actions[leaf].dscp_remark; dscp >= 0) {
      rewrite_dscp(data, len, keys, static_cast<uint8_t>(dscp));
    }
    if (r == EnqueueResult::kQueuedMarkCe) mark_ce(data, len, keys);
  }
  if (ndropped) {
    counters.drop(Drop::kQosTailDrop, ndropped);
    rte_pktmbuf_free_bulk(dropped, ndropped);
  }
  return static_cast<uint16_t>(n - ndropped - unshare_failed);
}

void EgressPort::flush_pending(const TxTarget& tx) {
  if (!npending_) return;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < npending_; ++i) bytes += rte_pktmbuf_pkt_len(pending_[i]);
  const uint16_t sent = dataplane::egress_transmit(*tx.lane, tx.port, pending_, npending_, bytes, 0);
  // What the device did not take waits here (the scheduler already charged
  // it): the queue in front of a full TX ring is the tree, not a drop.
  std::copy(pending_ + sent, pending_ + npending_, pending_);
  npending_ = static_cast<uint16_t>(npending_ - sent);
}

unsigned EgressPort::service(uint64_t now_ps, const TxTarget& tx) {
  if (handoff_) {
    rte_mbuf* in[kMaxBurst];
    for (unsigned round = 0; round < 4; ++round) {
      const unsigned n = rte_ring_dequeue_burst(handoff_, reinterpret_cast<void**>(in), kMaxBurst, nullptr);
      if (n == 0) break;
      if (active()) {
        enqueue(in, static_cast<uint16_t>(n), now_ps, *tx.counters);
      } else {  // QoS was removed while these waited: send them as they are
        for (unsigned i = 0; i < n; ++i) send_unshaped(in[i], tx);
      }
    }
  }
  if (const QosPlan* plan = active_.load(std::memory_order_relaxed)) {
    HtbScheduler& sched = *plan->scheduler;
    Dequeued out[kMaxBurst];
    const unsigned n = sched.dequeue_burst(now_ps, out, kMaxBurst - npending_);
    for (unsigned i = 0; i < n; ++i) pending_[npending_++] = reinterpret_cast<rte_mbuf*>(out[i].packet);
  }
  const uint16_t ready = npending_;
  flush_pending(tx);
  serve_snapshot(now_ps);
  return ready - npending_;
}

bool EgressPort::busy() const {
  const QosPlan* plan = active_.load(std::memory_order_relaxed);
  return npending_ || (plan && plan->scheduler->queued_total()) || (handoff_ && rte_ring_count(handoff_));
}

void EgressPort::adopt(const QosPlan* next, uint64_t now_ps, const TxTarget& tx) {
  const QosPlan* prev = active_.load(std::memory_order_relaxed);
  if (prev == next) return;
  if (prev && next && prev->scheduler == next->scheduler) {
    // Lightweight: same shape, new parameters; queues and tokens stay.
    HtbScheduler& s = *next->scheduler;
    for (uint32_t c = 0; c < s.size(); ++c) {
      if (!(s.spec(c) == next->tree.classes[c])) s.update_class(c, next->tree.classes[c], now_ps);
    }
  } else if (prev) {
    move_queued(*prev, next, now_ps, tx);
  }
  // Last: from here on `prev` may be freed by the control lcore.
  active_.store(next, std::memory_order_release);
}

void EgressPort::move_queued(const QosPlan& prev, const QosPlan* next, uint64_t now_ps, const TxTarget& tx) {
  HtbScheduler& old = *prev.scheduler;
  if (next) {
    // Counters of classes that keep their id carry over before anything moves.
    for (uint32_t c = 0; c < old.size(); ++c) {
      if (auto it = next->index_of.find(prev.class_ids[c]); it != next->index_of.end()) {
        next->scheduler->restore_stats(it->second, old.stats(c));
      }
    }
  }
  for (uint32_t c = 0; c < old.size(); ++c) {
    if (!old.is_leaf(c) || old.queue_packets(c) == 0) continue;
    uint32_t target = kNone;
    if (next) {
      auto it = next->index_of.find(prev.class_ids[c]);
      if (it != next->index_of.end() && next->scheduler->is_leaf(it->second)) target = it->second;
    }
    old.drain_class(c, [&](const Dequeued& d) {
      auto* m = reinterpret_cast<rte_mbuf*>(d.packet);
      if (!next) return send_unshaped(m, tx);  // QoS removed: queued packets leave as they are
      PacketKeys keys;
      read_packet_keys(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), m->port,
                       next->vxlan_udp_port, keys);
      const uint32_t leaf = target != kNone ? target : next->classifier.classify(keys);
      if (next->scheduler->enqueue(leaf, d.packet, d.length, keys.ecn != 0, now_ps) == EnqueueResult::kDropped) {
        tx.counters->drop(Drop::kQosTailDrop);
        rte_pktmbuf_free(m);
      }
    });
  }
}

void EgressPort::send_unshaped(rte_mbuf* m, const TxTarget& tx) {
  if (npending_ == kMaxBurst) flush_pending(tx);
  if (npending_ == kMaxBurst) {
    tx.counters->drop(DropReason::kTxFull);
    rte_pktmbuf_free(m);
    return;
  }
  pending_[npending_++] = m;
}

void EgressPort::serve_snapshot(uint64_t now_ps) {
  const uint64_t wanted = request_.load(std::memory_order_acquire);
  if (wanted == done_.load(std::memory_order_relaxed)) return;
  const QosPlan* plan = active_.load(std::memory_order_relaxed);
  const size_t n = plan ? std::min<size_t>(snapshot_.size(), plan->scheduler->size()) : 0;
  for (uint32_t c = 0; c < n; ++c) snapshot_[c] = snapshot_class(*plan->scheduler, c);
  snapshot_plan_ = plan ? plan->id : 0;
  snapshot_ps_ = now_ps;
  done_.store(wanted, std::memory_order_release);
}

bool EgressPort::request_snapshot(size_t classes) {
  const uint64_t r = request_.load(std::memory_order_relaxed);
  if (r != done_.load(std::memory_order_acquire)) return false;
  snapshot_.resize(classes);  // the owner does not touch it until the request below
  request_.store(r + 1, std::memory_order_release);
  return true;
}

const std::vector<ClassSnapshot>* EgressPort::snapshot_ready(uint64_t& plan_id, uint64_t& taken_ps) const {
  if (done_.load(std::memory_order_acquire) != request_.load(std::memory_order_relaxed)) return nullptr;
  plan_id = snapshot_plan_;
  taken_ps = snapshot_ps_;
  return &snapshot_;
}

void EgressPort::snapshot_now(std::vector<ClassSnapshot>& out, uint64_t& plan_id) const {
  out.clear();
  const QosPlan* plan = active();
  plan_id = plan ? plan->id : 0;
  if (!plan) return;
  for (uint32_t c = 0; c < plan->scheduler->size(); ++c) out.push_back(snapshot_class(*plan->scheduler, c));
}

void EgressPort::release_all() {
  if (const QosPlan* plan = active()) {
    plan->scheduler->drain([](const Dequeued& d) { rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(d.packet)); });
  }
  active_.store(nullptr, std::memory_order_release);
  if (npending_) rte_pktmbuf_free_bulk(pending_, npending_);
  npending_ = 0;
  if (handoff_) {
    void* m;
    while (rte_ring_dequeue(handoff_, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }
}

namespace {
TxTarget tx_target(dataplane::WorkerContext& w, uint16_t port) { return {port, &w, &w.counters->ports[port]}; }
const QosPlan* plan_of(const QosTables* qos, uint16_t port) { return qos ? qos->plans[port].get() : nullptr; }
}  // namespace

void WorkerScheduler::round_begin(dataplane::WorkerContext& w, const dataplane::ForwardingTables& t, uint64_t now_tsc) {
  // A new plan is adopted before any packet of this round reaches it. An
  // offline port keeps its plan (the control lcore holds it alive while
  // active): adopting may transmit, and its device may be closing.
  const uint64_t now_ps = clock_.to_ps(now_tsc);
  const QosTables* qos = t.get<QosTables>();
  for (uint16_t p : owned_) {
    EgressPort& e = *egress_[p];
    if (t.offline(p)) continue;
    if (const QosPlan* plan = plan_of(qos, p); plan != e.active()) e.adopt(plan, now_ps, tx_target(w, p));
  }
}

uint16_t WorkerScheduler::submit(dataplane::WorkerContext& w, const dataplane::ForwardingTables& t, uint16_t port,
                                 rte_mbuf** pkts, uint16_t n, uint64_t now_tsc) {
  EgressPort& e = *egress_[port];
  if (e.owner() != w.index) return e.hand_off(pkts, n, w.counters->ports[port]);
  const uint64_t now_ps = clock_.to_ps(now_tsc);
  if (const QosPlan* plan = plan_of(t.get<QosTables>(), port); e.active() != plan) e.adopt(plan, now_ps, tx_target(w, port));
  return e.enqueue(pkts, n, now_ps, w.counters->ports[port]);
}

unsigned WorkerScheduler::round_end(dataplane::WorkerContext& w, const dataplane::ForwardingTables& t, uint64_t now_tsc) {
  const uint64_t now_ps = clock_.to_ps(now_tsc);
  unsigned released = 0;
  for (uint16_t p : owned_) {
    EgressPort& e = *egress_[p];
    if (t.offline(p)) {
      e.serve_snapshot(now_ps);  // stats readers must not wait for the link
    } else if (e.active() || e.busy()) {
      released += e.service(now_ps, tx_target(w, p));
    }
  }
  return released;
}

}  // namespace meridian::qos
