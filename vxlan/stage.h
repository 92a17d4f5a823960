// The VTEP data path as one pipeline stage over a burst:
//   access port  -> bridge domain by VLAN -> learn source -> ARP/ND
//                   suppression -> local deliver | VXLAN encap | flood (HER)
//   underlay port -> ARP/ND punt | checks (ours, UDP port, I flag, VNI)
//                   -> decap -> learn source -> local deliver | local flood
// Learning never writes the FDB here: workers post LearnEvents on a ring
// and the control lcore (the only writer) applies them.
#pragma once

#include <cstdint>
#include <memory>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/pipeline.h"
#include "vxlan/tables.h"

namespace meridian::vxlan {

enum class LearnKind : uint8_t { kLocal = 1, kRemote = 2, kNeighbor = 3 };

/// One learn request from a worker (a multiple of 4 bytes for rte_ring_elem).
struct LearnEvent {
  LearnKind kind;
  uint8_t ipv6;
  uint16_t port;
  uint16_t vlan;
  uint8_t mac[6];
  uint32_t vni;
  uint32_t now_s;
  uint8_t ip[16];
  uint8_t outer_mac[6];  // kRemote: the outer source MAC (gleaned for on-link VTEPs on `port`, the ingress port)
  uint8_t pad[2];
};
static_assert(sizeof(LearnEvent) == 44, "docs/vxlan.md documents the size; rte_ring_elem needs a multiple of 4");

class VxlanStage final : public dataplane::Stage {
 public:
  /// `pool` supplies replica headers and clones; `learn_ring` carries
  /// LearnEvents to the control lcore (multi-producer).
  VxlanStage(rte_mempool* pool, rte_ring* learn_ring, unsigned workers);
  const char* name() const override { return "vxlan"; }
  bool active(const dataplane::ForwardingTables& tables) const override {
    const VxlanTables* vx = tables.get<VxlanTables>();
    return vx && vx->any_role;
  }
  void process(dataplane::PacketBatch& batch, const dataplane::StageContext& ctx) const override;

  /// A per-worker exact-match cache in front of the FDB (as OVS's EMC):
  /// (bridge domain, MAC) -> hash position, valid for one FDB generation.
  /// Direct-mapped; only hits are cached. Each worker writes only its own.
  struct EmcEntry {
    uint64_t tagged_key = 0;  // MAC in the low 48 bits, BridgeDomainState::id() in the high 16
    uint32_t generation = 0;
    int32_t position = -1;
  };
  static_assert(sizeof(EmcEntry) == 16, "four entries per cache line");
  static constexpr size_t kEmcEntries = 4096;  // 64 KiB per worker
  EmcEntry* emc(unsigned worker) const { return emc_.get() + size_t{worker} * kEmcEntries; }

 private:
  rte_mempool* pool_;
  rte_ring* learn_ring_;
  std::unique_ptr<EmcEntry[]> emc_;
};

}  // namespace meridian::vxlan
