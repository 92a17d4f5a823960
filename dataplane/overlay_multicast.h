// Where IP multicast goes inside the overlay's bridge domains: the contract
// between the module that keeps memberships (multicast_gw, which sets it in
// the table version) and the module that forwards bridge domains (vxlan,
// whose stage reads it when it would flood an IP multicast frame). Neither
// includes the other; both include this. A bridge domain absent here (not
// snooping) floods multicast like broadcast.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <unordered_map>
#include <vector>

#include "config/net_types.h"
#include "dataplane/counters.h"

namespace meridian::dataplane {

/// An attachment of a bridge domain: a port and a VLAN (0: untagged).
struct BridgePort {
  uint16_t port;
  uint16_t vlan;
  bool operator==(const BridgePort&) const = default;
};

/// (S,G) or, with an all-zero source, (*,G); IPv4 in the first 4 bytes.
struct MulticastKey {
  std::array<uint8_t, 16> source{};
  std::array<uint8_t, 16> group{};
  uint8_t family = 4;
  bool operator==(const MulticastKey&) const = default;
};
struct MulticastKeyHash {
  size_t operator()(const MulticastKey& k) const {
    uint64_t w[4];
    std::memcpy(w, k.source.data(), 16);
    std::memcpy(w + 2, k.group.data(), 16);
    uint64_t h = k.family;
    for (uint64_t v : w) h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

/// The overlay module's remote VTEP slots (what its stage indexes), by
/// address: set by that module in every table version it contributes to,
/// read by the multicast module's contribute (which runs after it) to put
/// slots into routes.
struct OverlayVtepSlots {
  static constexpr uint16_t kNone = 0xffff;
  uint64_t generation = 0;  // a new lookup, a new generation (from 1)
  std::function<uint16_t(const config::IpAddress&)> slot;
};

/// Where a route's last frame came in on a worker: an attachment's port and
/// VLAN, or the overlay.
struct MulticastIngress {
  static constexpr uint32_t kNone = 0xffffffff, kOverlay = 0xfffffffe;
  static uint32_t attachment(BridgePort p) { return uint32_t{p.port} << 16 | p.vlan; }
};

/// Each route's traffic and each of its outgoing egresses', counted by the
/// workers that forward it (one block per worker, single writer) and summed
/// on the control lcore. A route and each (route, egress) pair keep a slot
/// across table versions while they exist; the module that assigns slots
/// (multicast_gw) reserves their storage before a version naming them is
/// published, and reads a reused slot's counts as its new baseline.
class MulticastRouteCounters {
 public:
  static constexpr uint32_t kPerBlock = 1024, kMaxBlocks = 4096;  // up to 4,194,304 slots
  static constexpr uint32_t kNoSlot = 0xffffffff;
  struct Totals {
    uint64_t packets = 0, bytes = 0;
    uint32_t last_ingress = MulticastIngress::kNone;  // a route's: as one of the workers last saw it
  };

  explicit MulticastRouteCounters(unsigned workers) : workers_(workers ? workers : 1) {}

  /// Worker `worker`: a frame of `bytes` the route in `slot` forwarded, in by `ingress`.
  void count_in(unsigned worker, uint32_t slot, uint32_t bytes, uint32_t ingress) {
    Slot& s = at(worker, slot);
    s.packets.add(1);
    s.bytes.add(bytes);
    if (s.ingress.load(std::memory_order_relaxed) != ingress) s.ingress.store(ingress, std::memory_order_relaxed);
  }
  /// Worker `worker`: a copy of a `bytes` frame sent to the egress in `slot`.
  void count_out(unsigned worker, uint32_t slot, uint32_t bytes) {
    Slot& s = at(worker, slot);
    s.packets.add(1);
    s.bytes.add(bytes);
  }
  /// Control: storage for slots below `slots`; false past the maximum or
  /// when memory runs out (the slot is then not named in any route).
  bool reserve(uint32_t slots) noexcept {
    if (slots > kPerBlock * kMaxBlocks) return false;
    try {
      while (owned_.size() * kPerBlock < slots) {
        owned_.push_back(std::make_unique<Slot[]>(size_t{workers_} * kPerBlock));
        blocks_[owned_.size() - 1].store(owned_.back().get(), std::memory_order_release);
      }
    } catch (const std::bad_alloc&) {
      return false;
    }
    return true;
  }
  /// Control: the slot's counts summed over workers.
  Totals sum(uint32_t slot) const {
    Totals t;
    if (slot == kNoSlot || slot / kPerBlock >= owned_.size()) return t;
    const Slot* block = owned_[slot / kPerBlock].get();
    for (unsigned w = 0; w < workers_; ++w) {
      const Slot& s = block[w * kPerBlock + slot % kPerBlock];
      t.packets += s.packets.load();
      t.bytes += s.bytes.load();
      if (const uint32_t in = s.ingress.load(std::memory_order_relaxed); in != MulticastIngress::kNone) {
        t.last_ingress = in;
      }
    }
    return t;
  }
  /// Control, for a slot no version names any more (past its grace): it
  /// starts with no ingress when it is reused.
  void forget_ingress(uint32_t slot) {
    if (slot == kNoSlot || slot / kPerBlock >= owned_.size()) return;
    Slot* block = owned_[slot / kPerBlock].get();
    for (unsigned w = 0; w < workers_; ++w) {
      block[w * kPerBlock + slot % kPerBlock].ingress.store(MulticastIngress::kNone, std::memory_order_relaxed);
    }
  }

 private:
  struct alignas(32) Slot {  // two to a cache line, never across one
    SingleWriterCounter packets, bytes;
    std::atomic<uint32_t> ingress{MulticastIngress::kNone};
  };
  Slot& at(unsigned worker, uint32_t slot) {
    return blocks_[slot / kPerBlock].load(std::memory_order_relaxed)[worker * kPerBlock + slot % kPerBlock];
  }
  unsigned workers_;
  std::array<std::atomic<Slot*>, kMaxBlocks> blocks_{};
  std::vector<std::unique_ptr<Slot[]>> owned_;
};

struct MulticastRoute {
  /// Counter slots (MulticastRouteCounters): the route's frames in, and each
  /// egress's copies out, parallel to `locals`, `remote_vteps` and `remotes`
  /// (kNoSlot: not counted).
  uint32_t counter_slot = MulticastRouteCounters::kNoSlot;
  std::vector<uint32_t> local_slots, remote_vtep_slots, remote_slots;
  std::vector<BridgePort> locals;  // attachments with receivers, and those with a multicast router
  /// Remote edge VTEPs with receivers (ingress role): their addresses, and
  /// their slots in the overlay module's VTEP table of the same version
  /// (an address without a slot is left out of `remotes`).
  std::vector<config::IpAddress> remote_vteps;
  std::vector<uint16_t> remotes;
};

/// A snooping bridge domain: multicast data goes only where a route says; a
/// group with no route has no receivers but the router ports. Link-local
/// groups (net::link_local_group) always flood.
struct MulticastBridgeDomain {
  std::unordered_map<MulticastKey, MulticastRoute, MulticastKeyHash> routes;
  /// Attachments where another multicast router (a querier) was heard, per
  /// family ([0] IPv4, [1] IPv6): they get every group of it (RFC 4541
  /// §2.1.2), with or without a route.
  std::array<std::vector<BridgePort>, 2> routers;
  /// Ingress role: IP multicast data from an attachment goes to the remote
  /// VTEPs of its route (none without a route), not to the flood list.
  bool overlay_snooped = false;

  /// The (S,G) route, else the (*,G) one, else null.
  const MulticastRoute* lookup(uint8_t family, const uint8_t* source, const uint8_t* group) const {
    if (routes.empty()) return nullptr;
    MulticastKey k;
    k.family = family;
    const size_t n = family == 4 ? 4 : 16;
    std::memcpy(k.group.data(), group, n);
    std::memcpy(k.source.data(), source, n);
    if (auto it = routes.find(k); it != routes.end()) return &it->second;
    k.source.fill(0);
    if (auto it = routes.find(k); it != routes.end()) return &it->second;
    return nullptr;
  }
};

struct OverlayMulticast {
  std::unordered_map<uint32_t, MulticastBridgeDomain> bridge_domains;  // by VNI
  /// Where the routes' slots count (null: not counted).
  std::shared_ptr<MulticastRouteCounters> counters;
  const MulticastBridgeDomain* bd(uint32_t vni) const {
    auto it = bridge_domains.find(vni);
    return it == bridge_domains.end() ? nullptr : &it->second;
  }
};

}  // namespace meridian::dataplane
