// VXLAN (RFC 7348) wire format: building outer headers, parsing and
// checking received outer headers, the inner flow hash, ECN, ICMP too-big.
// Headers, checksums and ARP/ND are the shared net/ layer. Pure: plain byte buffers, no DPDK,
// so every codec is unit-tested against scapy-made golden packets and fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/packet_meta.h"
#include "net/wire.h"

namespace meridian::vxlan {

// The shared wire layer (net/), used unqualified by VXLAN's own code.
using net::kEthHeader;
using net::kVlanTag;
using net::kIpv4Header;
using net::kIpv6Header;
using net::kUdpHeader;
using net::kVxlanHeader;
using net::kDefaultVxlanPort;
using net::kVxlanFlagI;
using net::kEtherIpv4;
using net::kEtherIpv6;
using net::kEtherArp;
using net::kEtherVlan;
using net::kProtoUdp;
using net::kProtoIcmpv6;
using net::kProtoTcp;
using net::kNdRouterSolicit;
using net::kNdNeighborSolicit;
using net::kNdNeighborAdvert;
using net::be16;
using net::be32;
using net::put16;
using net::checksum_add;
using net::checksum_finish;
using net::ipv4_header_checksum;
using net::ipv4_pseudo_sum;
using net::ipv6_pseudo_sum;
using net::traffic_class;
using net::set_traffic_class;
using net::kArpFrame;
using net::kArpRequest;
using net::kArpReply;
using net::ArpView;
using net::parse_arp;
using net::build_arp;
using net::NdView;
using net::parse_nd;
using net::kNdFrame;
using net::build_ns;
using net::build_na;
using net::solicited_node;

/// Everything VXLAN adds in front of the inner Ethernet frame.
inline constexpr size_t kOuterV4 = kEthHeader + kIpv4Header + kUdpHeader + kVxlanHeader;  // 50
inline constexpr size_t kOuterV6 = kEthHeader + kIpv6Header + kUdpHeader + kVxlanHeader;  // 70

// ---- encapsulation ----------------------------------------------------------

/// The outer headers towards one remote VTEP, prebuilt once by the control
/// plane; `write_outer` fills the per-packet fields.
struct OuterTemplate {
  uint8_t bytes[kOuterV6] = {};
  uint8_t length = 0;  // kOuterV4 or kOuterV6, 0 when unset
  bool ipv6 = false;
  /// IPv4: the one's-complement sum of the header's constant words (TOS,
  /// total length and checksum taken as zero), so that a packet's header
  /// checksum is one addition instead of a pass over the header.
  uint32_t ip_sum = 0;
};

struct OuterParams {
  const uint8_t* dst_mac;   // next hop
  const uint8_t* src_mac;   // our underlay port
  const uint8_t* src_ip;    // 4 or 16 bytes
  const uint8_t* dst_ip;
  bool ipv6 = false;
  uint16_t udp_port = kDefaultVxlanPort;
  uint8_t ttl = 64;
};

void build_outer_template(OuterTemplate& t, const OuterParams& p);

/// The per-packet outer fields, the same towards every VTEP: head-end
/// replication computes them once per frame, not once per replica.
struct OuterFields {
  uint32_t vni;
  uint16_t src_port;
  uint16_t udp_len;     // inner frame + UDP + VXLAN headers
  uint8_t traffic_class;  // DSCP << 2 | ECN: IPv4 TOS, IPv6 traffic class
  uint32_t ip4_sum;     // IPv4 TOS and total length words, summed
};

/// `ecn` is the outer ECN field (RFC 6040 normal mode: the inner packet's, copied).
inline OuterFields outer_fields(uint32_t vni, uint16_t src_port, uint8_t dscp, uint16_t inner_len, uint8_t ecn = 0) {
  OuterFields f;
  f.vni = vni;
  f.src_port = src_port;
  f.udp_len = static_cast<uint16_t>(inner_len + kUdpHeader + kVxlanHeader);
  f.traffic_class = static_cast<uint8_t>((dscp & 0x3f) << 2 | (ecn & 3));
  f.ip4_sum = uint32_t{f.traffic_class} + uint32_t{f.udp_len} + kIpv4Header;  // TOS is the low byte of word 0
  return f;
}

/// Writes the outer headers at `out`. IPv4: DF set, header checksum, UDP
/// checksum 0. IPv6: the UDP checksum is left 0 for the caller (it covers
/// the payload). Inline: head-end replication calls it once per replica.
inline void write_outer(uint8_t* out, const OuterTemplate& t, const OuterFields& f) {
  // Constant sizes: the compiler emits a few vector moves, not a rep movs.
  uint8_t* ip = out + kEthHeader;
  uint8_t* udp;
  if (t.ipv6) {
    std::memcpy(out, t.bytes, kOuterV6);
    ip[0] = static_cast<uint8_t>(0x60 | f.traffic_class >> 4);
    ip[1] = static_cast<uint8_t>(f.traffic_class << 4);
    put16(ip + 4, f.udp_len);
    udp = ip + kIpv6Header;
  } else {
    std::memcpy(out, t.bytes, kOuterV4);
    ip[1] = f.traffic_class;
    put16(ip + 2, static_cast<uint16_t>(f.udp_len + kIpv4Header));
    uint32_t sum = t.ip_sum + f.ip4_sum;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, static_cast<uint16_t>(~sum));
    udp = ip + kIpv4Header;
  }
  put16(udp, f.src_port);
  put16(udp + 4, f.udp_len);
  uint8_t* vx = udp + kUdpHeader;
  vx[4] = static_cast<uint8_t>(f.vni >> 16);
  vx[5] = static_cast<uint8_t>(f.vni >> 8);
  vx[6] = static_cast<uint8_t>(f.vni);
}

/// The same for one packet: writes the outer headers at `out` for an inner
/// frame of `inner_len` bytes.
inline void write_outer(uint8_t* out, const OuterTemplate& t, uint32_t vni, uint16_t src_port, uint8_t dscp,
                        uint16_t inner_len, uint8_t ecn = 0) {
  write_outer(out, t, outer_fields(vni, src_port, dscp, inner_len, ecn));
}

/// Fills the UDP checksum of an IPv6 outer header built by write_outer, for
/// a contiguous frame (`outer` at the Ethernet header; the inner frame follows).
void finish_udp6_checksum(uint8_t* outer);

/// Offset of the UDP header within the outer headers.
inline size_t outer_udp_offset(bool ipv6) { return kEthHeader + (ipv6 ? kIpv6Header : kIpv4Header); }

/// A hash of the inner frame's flow: MACs, EtherType and, for IPv4/IPv6,
/// addresses, protocol and TCP/UDP ports. Stable for a flow; spreads flows.
uint32_t inner_flow_hash(const uint8_t* frame, size_t len);
/// Maps a flow hash into [min, max] (RFC 7348 §5 source-port entropy).
inline uint16_t source_port(uint32_t hash, uint16_t min, uint16_t max) {
  const uint32_t span = uint32_t{max} - min + 1;
  return static_cast<uint16_t>(min + static_cast<uint32_t>((uint64_t{hash} * span) >> 32));
}
/// DSCP of the inner IPv4/IPv6 packet (after at most one VLAN tag), 0 otherwise.
uint8_t inner_dscp(const uint8_t* frame, size_t len);
/// ECN field of the inner IPv4/IPv6 packet (after at most one VLAN tag), 0 otherwise.
uint8_t inner_ecn(const uint8_t* frame, size_t len);
/// Outer ECN field of an underlay packet whose IP header starts at `ip`.
inline uint8_t outer_ecn(const uint8_t* ip, bool ipv6) { return ipv6 ? (ip[1] >> 4) & 3 : ip[1] & 3; }
/// RFC 6040 decapsulation (normal mode): an outer CE over an ECN-capable
/// inner packet marks the inner packet CE (IPv4 checksum updated). Returns
/// false when the outer is CE but the inner is not ECN-capable (RFC 6040 §4.2:
/// drop, the congestion signal cannot be passed on).
bool ecn_decapsulate(uint8_t outer, uint8_t* inner_frame, size_t len);

// ---- decapsulation and underlay classification -----------------------------

#define MERIDIAN_UNDERLAY_STATUS(X)                                                  \
  X(kVxlan, "vxlan")                                                                 \
  X(kArp, "arp")                                                                     \
  X(kNeighborDiscovery, "nd")                                                        \
  X(kTruncated, "truncated")                                                         \
  X(kBadIpHeader, "bad_ip_header")                                                   \
  X(kFragment, "fragment")                                                           \
  X(kNotVxlan, "not_vxlan")                                                          \
  X(kNoIFlag, "no_i_flag")                                                           \
  X(kBadChecksum, "bad_checksum")                                                    \
  X(kOtherEtherType, "other_ethertype")

enum class UnderlayStatus : uint8_t {
#define MERIDIAN_US_ENUM(e, n) e,
  MERIDIAN_UNDERLAY_STATUS(MERIDIAN_US_ENUM)
#undef MERIDIAN_US_ENUM
};
const char* underlay_status_name(UnderlayStatus s);

/// What the classifier learned from an underlay frame.
struct OuterView {
  bool ipv6 = false;
  const uint8_t* src_ip = nullptr;  // into the frame
  const uint8_t* dst_ip = nullptr;
  uint16_t inner_offset = 0;        // start of the inner Ethernet frame
  uint16_t inner_length = 0;        // inner frame length (UDP length - 16)
  uint32_t vni = 0;
  uint16_t l3_offset = 0;
};

/// Classifies an untagged underlay frame: ARP, ND (NS/NA), VXLAN to
/// `vxlan_port` with the I flag and a full inner Ethernet header, or why not.
/// Checks IPv4 header length, checksum and total length, IPv6 payload length,
/// and over IPv6 the UDP checksum, which must not be zero (RFC 8200 §8.1; the
/// Linux kernel drops such VXLAN frames too). Structural problems are
/// reported before a bad checksum. `meta` is the frame's metadata
/// (net::parse_meta); what it does not check (checksums, fragments, the
/// VXLAN header) is checked here, within the lengths it has checked.
UnderlayStatus classify_underlay(const uint8_t* frame, const net::PacketMeta& meta, uint16_t vxlan_port,
                                 OuterView& out);
/// The same on a frame not parsed yet.
UnderlayStatus classify_underlay(const uint8_t* frame, size_t len, uint16_t vxlan_port, OuterView& out);

}  // namespace meridian::vxlan
