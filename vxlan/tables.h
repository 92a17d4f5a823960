// The VXLAN part of a forwarding snapshot: port roles, VLAN -> bridge
// domain maps, bridge domains with their flood targets, remote VTEP
// rewrites and the local VTEP's addresses. Immutable once published; the
// mutable per-BD state (FDB, neighbours, counters) hangs off shared
// pointers that live as long as any snapshot that names them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/overlay_multicast.h"
#include "vxlan/bridge_domain.h"
#include "vxlan/wire.h"

namespace meridian::vxlan {

inline constexpr uint16_t kNoBd = 0xffff;
/// Remote VTEP slots: every configured VTEP (at most
/// config::kMaxConfiguredVteps) always finds one, learned VTEPs have their
/// own allowance, and the rest is slack for slots waiting out an RCU grace
/// period before reuse.
inline constexpr uint16_t kMaxLearnedVteps = 1024;
inline constexpr uint16_t kMaxRemoteVteps = 6144;
inline constexpr uint16_t kNoSlot = 0xffff;

enum class PortRole : uint8_t { kNone, kAccess, kUnderlay };

struct AccessPort {
  std::array<uint16_t, 4096> bd_by_vlan;  // VLAN id (0 = untagged) -> index into bds
  AccessPort() { bd_by_vlan.fill(kNoBd); }
};

struct UnderlayPort {
  bool has_ipv4 = false, has_ipv6 = false;
  uint8_t ipv4[4] = {};
  uint8_t ipv6[16] = {};
  uint8_t mac[6] = {};
  uint16_t mtu = 1500;
};

/// An attachment (port, VLAN 0 = untagged): the engine's type, so that a
/// multicast route (dataplane/overlay_multicast.h) names them the same way.
using LocalTarget = dataplane::BridgePort;

struct BdTables {
  uint32_t vni = 0;
  bool learning = true;
  bool arp_suppression = true;
  /// Decapsulate from any VTEP (remote_vtep_learning); otherwise only from
  /// the slots set in `vteps_allowed` (flood list and static FDB).
  bool any_vtep = false;
  std::shared_ptr<BridgeDomainState> state;
  std::vector<LocalTarget> locals;
  std::vector<uint16_t> flood_vteps;  // remote VTEP slots
  std::vector<uint64_t> vteps_allowed;  // bitmap by slot

  bool allows(uint16_t slot) const {
    return any_vtep || (slot / 64u < vteps_allowed.size() && (vteps_allowed[slot / 64u] >> (slot % 64u) & 1));
  }
};

/// Remote VTEP address -> slot, for the check on every decapsulated frame:
/// open addressing over IPv4-mapped / IPv6 keys with their family (an IPv6
/// outer source ::ffff:a.b.c.d is not the IPv4 VTEP a.b.c.d), power-of-two size.
struct VtepIndex {
  struct Entry {
    uint64_t hi = 0, lo = 0;
    uint16_t slot = kNoSlot;  // kNoSlot: empty
    bool ipv6 = false;
    bool same_key(const Entry& o) const { return hi == o.hi && lo == o.lo && ipv6 == o.ipv6; }
  };
  std::vector<Entry> entries;

  static Entry key(const uint8_t* ip, bool ipv6) {
    Entry k;
    k.ipv6 = ipv6;
    if (ipv6) {
      __builtin_memcpy(&k.hi, ip, 8);
      __builtin_memcpy(&k.lo, ip + 8, 8);
    } else {
      uint32_t v4;
      __builtin_memcpy(&v4, ip, 4);
      k.lo = uint64_t{v4} << 32 | 0xffff0000u;  // ::ffff:a.b.c.d, in its own byte order
    }
    return k;
  }
  static size_t hash(const Entry& k) { return static_cast<size_t>(((k.hi ^ k.lo) * 0x9e3779b97f4a7c15ULL) >> 32); }
  uint16_t find(const uint8_t* ip, bool ipv6) const {
    if (entries.empty()) return kNoSlot;
    const Entry k = key(ip, ipv6);
    const size_t mask = entries.size() - 1;
    for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      const Entry& e = entries[i];
      if (e.slot == kNoSlot) return kNoSlot;
      if (e.same_key(k)) return e.slot;
    }
  }
  void insert(const uint8_t* ip, bool ipv6, uint16_t slot) {
    Entry k = key(ip, ipv6);
    k.slot = slot;
    const size_t mask = entries.size() - 1;
    for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (entries[i].slot == kNoSlot || entries[i].same_key(k)) {
        entries[i] = k;
        return;
      }
    }
  }
  /// Sized for `n` addresses at most half full.
  void reset(size_t n) {
    size_t size = 8;
    while (size < 2 * n) size *= 2;
    entries.assign(size, Entry{});
  }
};

/// How to reach one remote VTEP: the outer headers and the egress port.
struct RemoteVtep {
  bool in_use = false;
  bool resolved = false;
  IpAddress ip;
  uint16_t port = dataplane::kMaxPorts;
  uint16_t mtu = 1500;
  OuterTemplate outer;
};

struct VxlanTables {
  std::array<PortRole, dataplane::kMaxPorts> role{};
  bool any_role = false;  // some port is an access or underlay port: the stage has work
  std::array<std::unique_ptr<AccessPort>, dataplane::kMaxPorts> access;
  std::array<UnderlayPort, dataplane::kMaxPorts> underlay{};
  std::vector<BdTables> bds;
  /// VNI -> index into bds: open addressing, linear probing, power-of-two
  /// size at least twice the bridge domains (a VNI of 0 marks a free slot).
  struct VniSlot {
    uint32_t vni = 0;
    uint16_t bd = kNoBd;
  };
  std::vector<VniSlot> vni_slots;
  std::vector<RemoteVtep> vteps;  // indexed by slot
  VtepIndex vtep_index;           // every in-use slot by address
  uint16_t udp_port = kDefaultVxlanPort;
  uint16_t source_port_min = 49152, source_port_max = 65535;
  int dscp = -1;  // -1: copy the inner DSCP
  bool icmp_too_big = false;
  uint32_t replica_copy_max = 2048;  // VtepConfig::replica_copy_max_bytes
  uint64_t tsc_hz = 1;

  static size_t vni_hash(uint32_t vni) { return static_cast<size_t>((vni * 0x9e3779b1u) >> 8); }
  const BdTables* bd_for_vni(uint32_t vni) const {
    if (vni_slots.empty() || vni == 0) return nullptr;
    const size_t mask = vni_slots.size() - 1;
    for (size_t i = vni_hash(vni) & mask;; i = (i + 1) & mask) {
      const VniSlot& s = vni_slots[i];
      if (s.vni == vni) return &bds[s.bd];
      if (s.vni == 0) return nullptr;
    }
  }
  /// Builds vni_slots from bds.
  void index_vnis() {
    size_t size = 8;
    while (size < 2 * bds.size()) size *= 2;
    vni_slots.assign(size, VniSlot{});
    for (size_t b = 0; b < bds.size(); ++b) {
      for (size_t i = vni_hash(bds[b].vni) & (size - 1);; i = (i + 1) & (size - 1)) {
        if (vni_slots[i].vni == 0) {
          vni_slots[i] = {bds[b].vni, static_cast<uint16_t>(b)};
          break;
        }
      }
    }
  }
};

}  // namespace meridian::vxlan
