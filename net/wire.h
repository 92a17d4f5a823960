// Wire constants and byte order shared by every module: header sizes,
// EtherTypes, IP protocols, big-endian loads and stores, the IP traffic
// class byte. Pure: no DPDK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace meridian::net {

inline constexpr size_t kEthHeader = 14;
inline constexpr size_t kVlanTag = 4;
inline constexpr size_t kIpv4Header = 20;
inline constexpr size_t kIpv6Header = 40;
inline constexpr size_t kUdpHeader = 8;
inline constexpr size_t kVxlanHeader = 8;
inline constexpr uint16_t kDefaultVxlanPort = 4789;
inline constexpr uint8_t kVxlanFlagI = 0x08;

inline constexpr uint16_t kEtherIpv4 = 0x0800, kEtherIpv6 = 0x86dd, kEtherArp = 0x0806, kEtherVlan = 0x8100,
                          kEtherQinQ = 0x88a8, kEtherPtp = 0x88f7;
inline constexpr uint8_t kProtoUdp = 17, kProtoIcmpv6 = 58, kProtoTcp = 6;
inline constexpr uint8_t kNdRouterSolicit = 133, kNdNeighborSolicit = 135, kNdNeighborAdvert = 136;

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

/// Traffic class byte (DSCP << 2 | ECN) of the IPv4 or IPv6 header at `ip`.
inline uint8_t traffic_class(const uint8_t* ip, uint8_t version) {
  return version == 4 ? ip[1] : static_cast<uint8_t>((ip[0] & 0x0f) << 4 | ip[1] >> 4);
}
/// Rewrites that byte; IPv4 keeps a valid header checksum by the RFC 1624
/// incremental update. The caller guarantees the header is present.
void set_traffic_class(uint8_t* ip, uint8_t version, uint8_t tc);

/// A multicast group whose traffic stays on the link and is always flooded,
/// never snooped (RFC 4541 §2.1.2): IPv4 224.0.0.0/24, IPv6 interface- and
/// link-local scopes (RFC 4291 §2.7). `group` holds 4 or 16 bytes.
inline bool link_local_group(uint8_t family, const uint8_t* group) {
  if (family == 4) return group[0] == 224 && group[1] == 0 && group[2] == 0;
  return (group[1] & 0x0f) <= 2;
}

}  // namespace meridian::net
