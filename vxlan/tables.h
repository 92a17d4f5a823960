// The VXLAN part of a forwarding snapshot: port roles, VLAN -> bridge
// domain maps, bridge domains with their flood targets, remote VTEP
// rewrites and the local VTEP's addresses. Immutable once published; the
// mutable per-BD state (FDB, neighbours, counters) hangs off shared
// pointers that live as long as any snapshot that names them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "bridge_domain.h"
#include "counters.h"
#include "wire.h"

namespace meridian::vxlan {

inline constexpr uint16_t kNoBd = 0xffff;
inline constexpr uint16_t kMaxRemoteVteps = 4096;

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

struct LocalTarget {
  uint16_t port;
  uint16_t vlan;  // 0 = untagged
};

struct BdTables {
  uint32_t vni = 0;
  bool learning = true;
  bool arp_suppression = true;
  std::shared_ptr<BridgeDomainState> state;
  std::vector<LocalTarget> locals;
  std::vector<uint16_t> flood_vteps;  // remote VTEP slots
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
  std::array<std::unique_ptr<AccessPort>, dataplane::kMaxPorts> access;
  std::array<UnderlayPort, dataplane::kMaxPorts> underlay{};
  std::vector<BdTables> bds;
  std::unordered_map<uint32_t, uint16_t> bd_by_vni;
  std::vector<RemoteVtep> vteps;  // indexed by slot
  uint16_t udp_port = kDefaultVxlanPort;
  uint16_t source_port_min = 49152, source_port_max = 65535;
  int dscp = -1;  // -1: copy the inner DSCP
  uint64_t tsc_hz = 1;

  const BdTables* bd_for_vni(uint32_t vni) const {
    auto it = bd_by_vni.find(vni);
    return it == bd_by_vni.end() ? nullptr : &bds[it->second];
  }
};

}  // namespace meridian::vxlan
