// The HTB scheduler on the data path: one EgressPort per DPDK port, run by
// the worker that owns the port (port id % workers). Packets any worker
// forwards to a QoS port are classified and queued there; every poll round
// the owner releases what the tree allows into its own TX queue.
//
//   worker or control lcore -> dataplane::egress_send -> WorkerScheduler::submit
//        -> [owner] classify, remark, enqueue
//        \ [other worker, control lcore] handoff ring -> owner
//   owner, each round: adopt a new plan (round_begin); drain the ring,
//   dequeue -> tx_burst (round_end)
//
// Config changes arrive as a new QosPlan in the RCU-published tables. A plan
// with the same tree shape shares the running scheduler and only updates
// class parameters (queued packets and token levels stay). A new shape gets
// a fresh scheduler, and the owner moves every queued packet over: to the
// class with the same id when it is still a leaf, else through the new
// classifier. Counters of classes that keep their id carry over.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/counters.h"
#include "dataplane/pipeline.h"
#include "dataplane/port_scheduler.h"
#include "dataplane/tables.h"
#include "dataplane/worker.h"
#include "qos/classifier.h"
#include "qos/drop_reasons.h"
#include "qos/htb.h"
#include "qos/model.h"

namespace meridian::qos {

/// TSC cycles to the scheduler's picoseconds, from a base taken at start-up
/// (64-bit picoseconds last 213 days from the base).
class TscClock {
 public:
  TscClock(uint64_t base_tsc, uint64_t tsc_hz);
  uint64_t to_ps(uint64_t tsc) const {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(tsc - base_) * mult_) >> kShift);
  }

 private:
  static constexpr unsigned kShift = 24;
  uint64_t base_;
  uint64_t mult_;  // picoseconds per cycle << kShift
};

struct LeafAction {
  int16_t dscp_remark = -1;  // -1: keep the packet's DSCP
  bool marks_ce = false;     // an ECN profile: may mark an ECN-capable packet CE
};

/// One port's compiled QoS. Immutable once published, except the scheduler,
/// which only the port's owner worker touches.
struct QosPlan {
  config::QosPort source;  // what it was compiled from: an unchanged port keeps its plan
  uint64_t id = 0;  // unique per built plan, for matching stats snapshots
  uint16_t vxlan_udp_port = 4789;
  TreeSpec tree;    // every value resolved, quanta filled
  std::vector<std::string> class_ids;
  std::unordered_map<std::string, uint32_t> index_of;
  Classifier classifier;
  std::vector<LeafAction> actions;
  /// False when no rule, remark or ECN profile reads the headers: every
  /// packet goes to the default class unparsed.
  bool reads_headers = true;
  std::shared_ptr<HtbScheduler> scheduler;
};

/// Every port's plan (null: not shaped).
using QosPlans = std::array<std::shared_ptr<const QosPlan>, dataplane::kMaxPorts>;
/// QoS's state in a table version (ForwardingTables::get<QosTables>): a
/// type of its own, so no other array of plans could share its slot.
struct QosTables {
  QosPlans plans;
};

/// Name -> DPDK port id, for ingress-port rules.
using PortIdOf = std::function<std::optional<uint16_t>(const std::string&)>;

/// Compiles `cfg` (already validated) into a plan. When `previous` has the
/// same tree shape (ids, parents, order) the plan shares its scheduler: a
/// lightweight change. `capacity` bounds the packets the tree may hold.
std::shared_ptr<const QosPlan> build_plan(const config::QosPort& cfg, const PortIdOf& port_id_of,
                                          uint16_t vxlan_udp_port, uint32_t capacity,
                                          const std::shared_ptr<const QosPlan>& previous, uint64_t now_ps,
                                          uint64_t plan_id);

/// What the control lcore reads of one class.
struct ClassSnapshot {
  ClassStats stats;
  int64_t tokens_bytes = 0, ctokens_bytes = 0;
  uint32_t queue_packets = 0;
  uint64_t queue_bytes = 0;
  HtbScheduler::Mode mode = HtbScheduler::Mode::kGreen;
};
ClassSnapshot snapshot_class(const HtbScheduler& s, uint32_t c);

/// Where the owner sends what the scheduler releases: its lane's queue of
/// the port, through the engine's wire step (dataplane/egress.h).
struct TxTarget {
  uint16_t port = 0;
  dataplane::WorkerContext* lane = nullptr;     // the owner's
  dataplane::PortCounters* counters = nullptr;  // the owner's block for `port`
};

class EgressPort;

/// One worker's PortScheduler: runs the HTB trees of the ports it owns and
/// hands what other ports' owners must shape to them.
class WorkerScheduler final : public dataplane::PortScheduler {
 public:
  WorkerScheduler(EgressPort* const* egress, std::vector<uint16_t> owned, const TscClock& clock)
      : egress_(egress), owned_(std::move(owned)), clock_(clock) {}
  void round_begin(dataplane::WorkerContext& worker, const dataplane::ForwardingTables& tables,
                   uint64_t now_tsc) override;
  uint16_t submit(dataplane::WorkerContext& worker, const dataplane::ForwardingTables& tables, uint16_t port,
                  rte_mbuf** pkts, uint16_t n, uint64_t now_tsc) override;
  unsigned round_end(dataplane::WorkerContext& worker, const dataplane::ForwardingTables& tables,
                     uint64_t now_tsc) override;

 private:
  EgressPort* const* egress_;   // [kMaxPorts], null where no port
  std::vector<uint16_t> owned_;  // the ports whose trees this worker runs
  const TscClock& clock_;
};

class EgressPort {
 public:
  /// `handoff_slots`: the ring other lcores hand packets to the owner by
  /// (other workers, and the control lcore, which owns no port).
  EgressPort(uint16_t port, unsigned owner, unsigned handoff_slots);
  ~EgressPort();
  EgressPort(const EgressPort&) = delete;
  EgressPort& operator=(const EgressPort&) = delete;

  unsigned owner() const { return owner_; }

  // ---- any lcore -----------------------------------------------------------
  /// Non-owners (other workers, the control lcore): passes `n` packets to
  /// the owner; frees and counts (qos_handoff_full) what does not fit.
  /// Returns how many were passed.
  uint16_t hand_off(rte_mbuf** pkts, uint16_t n, dataplane::PortCounters& counters);

  // ---- owner worker only ---------------------------------------------------
  /// Makes `plan` (null: QoS removed) the running one; see the header comment.
  /// Packets that cannot move are sent straight out (plan removed) or counted.
  void adopt(const QosPlan* plan, uint64_t now_ps, const TxTarget& tx);
  /// The plan the owner runs. The control lcore reads it too (acquire), to
  /// keep that plan alive until the owner has moved off it.
  const QosPlan* active() const { return active_.load(std::memory_order_acquire); }
  /// Classifies, rewrites and queues packets for this port; returns how
  /// many were queued (the rest are counted as qos_tail_drop or qos_unshare_no_buffer).
  uint16_t enqueue(rte_mbuf** pkts, uint16_t n, uint64_t now_ps, dataplane::PortCounters& counters);
  /// Drains the handoff ring, releases what the tree allows at `now_ps` and
  /// transmits; returns the packets sent. Serves a pending stats request.
  unsigned service(uint64_t now_ps, const TxTarget& tx);
  /// Anything waiting here (queued, in the ring or not yet transmitted)?
  bool busy() const;
  /// Answers a pending stats request without transmitting (service() does
  /// this too; for a port that must not be touched).
  void serve_snapshot(uint64_t now_ps);

  // ---- control lcore -------------------------------------------------------
  /// Asks the owner for a copy of every class of its running plan. Returns
  /// false while an earlier request is still outstanding.
  bool request_snapshot(size_t classes);
  /// The finished snapshot, if the owner has answered the last request.
  /// `taken_ps`: the owner's clock when it copied the counters.
  const std::vector<ClassSnapshot>* snapshot_ready(uint64_t& plan_id, uint64_t& taken_ps) const;
  /// Reads the running plan directly: only while no worker runs.
  void snapshot_now(std::vector<ClassSnapshot>& out, uint64_t& plan_id) const;
  /// Frees whatever is still held (shutdown, workers stopped).
  void release_all();

 private:
  void flush_pending(const TxTarget& tx);
  void send_unshaped(rte_mbuf* m, const TxTarget& tx);
  /// Restructure: moves every queued packet of `prev` into `next` (or out
  /// unshaped when QoS is removed).
  void move_queued(const QosPlan& prev, const QosPlan* next, uint64_t now_ps, const TxTarget& tx);

  unsigned owner_;
  rte_ring* handoff_ = nullptr;
  std::atomic<const QosPlan*> active_{nullptr};  // stored last in adopt()
  rte_mbuf* pending_[dataplane::kMaxBurst];
  uint16_t npending_ = 0;
  // Stats mailbox: the control lcore sizes `snapshot_` and bumps `request_`;
  // the owner fills it and publishes `done_` (release).
  std::atomic<uint64_t> request_{0}, done_{0};
  std::vector<ClassSnapshot> snapshot_;
  uint64_t snapshot_plan_ = 0;
  uint64_t snapshot_ps_ = 0;
};

}  // namespace meridian::qos
