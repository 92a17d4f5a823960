// The burst pipeline: stages run in order over a whole burst (BESS's
// ProcessBatch, VPP's vector nodes). Each stage decides the fate of the
// packets still undecided; the worker then transmits, punts or drops them.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <rte_mbuf.h>

#include "dataplane/counters.h"
#include "dataplane/drop_reasons.h"
#include "dataplane/tables.h"
#include "net/packet_meta.h"

namespace meridian::dataplane {

inline constexpr uint16_t kMaxBurst = 64;

/// kConsumed: the stage took ownership (sent replicas, freed or queued it).
enum class Verdict : uint8_t { kUndecided, kForward, kDrop, kPunt, kConsumed };

struct PacketBatch {
  uint16_t rx_port = 0;
  uint16_t count = 0;
  uint16_t overlay_port = net::kDefaultVxlanPort;  // ForwardingTables::overlay_udp_port, for meta()
  rte_mbuf* pkts[kMaxBurst];
  Verdict verdict[kMaxBurst];
  uint16_t tx_port[kMaxBurst] = {};  // defined for the branch-free checks that read every slot
  DropId reason[kMaxBurst];

  void reset(uint16_t port, uint16_t n) {
    rx_port = port;
    count = n;
    meta_read_ = 0;
    rewritten_ = false;
    for (uint16_t i = 0; i < n; ++i) verdict[i] = Verdict::kUndecided;
  }
  /// Packet i's headers, read from its first segment on the first call of
  /// a pass and shared by every later stage, so no stage walks the headers
  /// again (VXLAN's access side reads its one VLAN tag itself). A pass where
  /// no stage asks (a plain cross-connect) parses nothing. Runts never get
  /// here: the worker drops them before the first stage.
  const net::PacketMeta& meta(uint16_t i) {
    if (!(meta_read_ >> i & 1)) {
      net::parse_meta(rte_pktmbuf_mtod(pkts[i], const uint8_t*), rte_pktmbuf_data_len(pkts[i]), overlay_port,
                      meta_[i].value);
      meta_read_ |= uint64_t{1} << i;
    }
    return meta_[i].value;
  }
  /// Only the EtherType after up to two VLAN tags: from the metadata when a
  /// stage has read it, else from the frame without parsing further.
  uint16_t ethertype(uint16_t i) const {
    if (meta_read_ >> i & 1) return meta_[i].value.outer.ethertype;
    return net::ethertype_after_tags(rte_pktmbuf_mtod(pkts[i], const uint8_t*), rte_pktmbuf_data_len(pkts[i]));
  }
  /// The same with the overlay's inner frame read too (when it has one).
  const net::PacketMeta& meta_with_inner(uint16_t i) {
    meta(i);
    net::parse_inner(rte_pktmbuf_mtod(pkts[i], const uint8_t*), rte_pktmbuf_data_len(pkts[i]), meta_[i].value);
    return meta_[i].value;
  }
  /// A stage that rewrites packet i's headers (encapsulation, decapsulation,
  /// a VLAN tag pushed or popped) or changes its length says so; the next
  /// reader parses it again.
  void headers_changed(uint16_t i) {
    meta_read_ &= ~(uint64_t{1} << i);
    rewritten_ = true;
  }
  /// No stage said it changed a packet's headers or length this pass (the
  /// transparent clock's in-place correction keeps both): the burst still
  /// has the length it was received with.
  bool as_received() const { return !rewritten_; }
  bool undecided(uint16_t i) const { return verdict[i] == Verdict::kUndecided; }
  void forward(uint16_t i, uint16_t port) {
    verdict[i] = Verdict::kForward;
    tx_port[i] = port;
  }
  /// `r`: any module's drop reason enum (drop_id found by argument-dependent lookup).
  template <class Reason>
  void drop(uint16_t i, Reason r) {
    verdict[i] = Verdict::kDrop;
    reason[i] = drop_id(r);
  }
  void punt(uint16_t i) { verdict[i] = Verdict::kPunt; }
  void consumed(uint16_t i) { verdict[i] = Verdict::kConsumed; }

 private:
  // Left uninitialised: a burst's metadata is written before it is read
  // (meta_read_), and zeroing 64 of them every poll round would cost more
  // than parsing.
  union MetaSlot {
    MetaSlot() {}
    net::PacketMeta value;
  };
  static_assert(kMaxBurst <= 64, "meta_read_ holds one bit per packet");
  MetaSlot meta_[kMaxBurst];
  uint64_t meta_read_ = 0;
  bool rewritten_ = false;  // some headers_changed() this pass
};

/// Packets a stage creates (replicas, replies) on top of the burst; the
/// worker transmits them on its own queues after the burst's verdicts, or
/// as soon as kCapacity wait (head-end replicas leave in runs as they are
/// made, during the stage: emit_run). Small on purpose: a replica takes one or two
/// mbufs, and holding more than the mempool's per-lcore cache (256) in
/// flight sends allocation to the ring and through the whole pool, cold
/// (the head-end replication cliff, docs/benchmarks.md); 32, the usual TX
/// burst, measured a few percent less per copied replica than 64 (fewer
/// buffers written between one use and the next).
struct TxBuffer {
  static constexpr uint16_t kCapacity = 32;
  uint16_t count = 0;
  rte_mbuf* pkts[kCapacity];
  uint16_t port[kCapacity];
  void (*flush_fn)(void* owner, TxBuffer& buffer) = nullptr;
  /// Sends a run of packets to one port at once (the worker's egress).
  void (*send_fn)(void* owner, uint16_t port, rte_mbuf** pkts, uint16_t n, uint64_t bytes) = nullptr;
  void* owner = nullptr;

  void emit(uint16_t p, rte_mbuf* m) {
    if (count == kCapacity) flush();
    pkts[count] = m;
    port[count++] = p;
  }
  /// A run of `n` packets (`bytes` in all) for port `p`, sent at once
  /// after what waits here (each port keeps its order): head-end
  /// replication's chunks, which skip the copy into the buffer and the
  /// regrouping by port.
  void emit_run(uint16_t p, rte_mbuf** run, uint16_t n, uint64_t bytes) {
    if (!send_fn) {
      for (uint16_t i = 0; i < n; ++i) emit(p, run[i]);
      return;
    }
    flush();
    if (n) send_fn(owner, p, run, n, bytes);
  }
  void flush() {
    if (count && flush_fn) flush_fn(owner, *this);
    count = 0;
  }
};

/// What a stage may read while processing one burst.
struct StageContext {
  const ForwardingTables& tables;
  uint64_t now_tsc;
  unsigned worker;
  TxBuffer* extra = nullptr;               // for packets beyond the burst
  WorkerCounters* counters = nullptr;      // the worker's own block
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  /// Must not allocate, lock, log or block. Touches only undecided packets,
  /// reads their headers through PacketBatch::meta and calls
  /// PacketBatch::headers_changed for a packet whose headers it rewrites
  /// or whose length it changes (the worker's tx byte count relies on it).
  /// The exception is the transparent clock (ptp/stage.h): for PTP event
  /// frames alone, a few a second per flow, it locks a port's kernel
  /// timestamp tap, and its egress stage sends forwarded ones itself.
  virtual void process(PacketBatch& batch, const StageContext& ctx) const = 0;
  /// Whether the stage has work under these tables. One that has none is
  /// left out of the pipeline for that table version (the engine asks at
  /// every publication), so an unconfigured module costs nothing per burst.
  /// Stages that share per-burst state (the transparent clock's pair) must
  /// answer alike.
  virtual bool active(const ForwardingTables& /*tables*/) const { return true; }
};

/// Ordered stages; built once at startup and shared read-only by all workers.
using Pipeline = std::vector<std::unique_ptr<const Stage>>;

}  // namespace meridian::dataplane
