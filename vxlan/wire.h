// VXLAN (RFC 7348) and underlay neighbour-discovery wire formats: building
// outer headers, parsing and checking received outer headers, ARP and
// IPv6 ND messages, Internet checksums. Pure: plain byte buffers, no DPDK,
// so every codec is unit-tested against scapy-made golden packets and fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace meridian::vxlan {

inline constexpr size_t kEthHeader = 14;
inline constexpr size_t kVlanTag = 4;
inline constexpr size_t kIpv4Header = 20;
inline constexpr size_t kIpv6Header = 40;
inline constexpr size_t kUdpHeader = 8;
inline constexpr size_t kVxlanHeader = 8;
/// Everything VXLAN adds in front of the inner Ethernet frame.
inline constexpr size_t kOuterV4 = kEthHeader + kIpv4Header + kUdpHeader + kVxlanHeader;  // 50
inline constexpr size_t kOuterV6 = kEthHeader + kIpv6Header + kUdpHeader + kVxlanHeader;  // 70
inline constexpr uint16_t kDefaultVxlanPort = 4789;
inline constexpr uint8_t kVxlanFlagI = 0x08;

inline constexpr uint16_t kEtherIpv4 = 0x0800, kEtherIpv6 = 0x86dd, kEtherArp = 0x0806, kEtherVlan = 0x8100;
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

// ---- checksums --------------------------------------------------------------

/// One's-complement sum of `len` bytes added to `sum` (not folded). Odd
/// lengths are padded with a zero byte, so only the last chunk may be odd.
uint32_t checksum_add(const uint8_t* data, size_t len, uint32_t sum);
/// Folds and complements a running sum into the 16-bit checksum field value.
uint16_t checksum_finish(uint32_t sum);
/// IPv4 header checksum over `ihl_bytes` (the field itself taken as zero).
uint16_t ipv4_header_checksum(const uint8_t* ip, size_t ihl_bytes);
/// Running sums of the IPv4 / IPv6 pseudo-header for an upper-layer packet.
uint32_t ipv4_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint16_t upper_len, uint8_t protocol);
uint32_t ipv6_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint32_t upper_len, uint8_t next_header);

// ---- encapsulation ----------------------------------------------------------

/// The outer headers towards one remote VTEP, prebuilt once by the control
/// plane; `write_outer` fills the per-packet fields.
struct OuterTemplate {
  uint8_t bytes[kOuterV6] = {};
  uint8_t length = 0;  // kOuterV4 or kOuterV6, 0 when unset
  bool ipv6 = false;
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

/// Writes the outer headers at `out` for an inner frame of `inner_len`
/// bytes. IPv4: DF set, header checksum, UDP checksum 0. IPv6: the UDP
/// checksum is left 0 for the caller (it covers the payload). `ecn` is the
/// outer ECN field (RFC 6040 normal mode: the inner packet's, copied).
void write_outer(uint8_t* out, const OuterTemplate& t, uint32_t vni, uint16_t src_port, uint8_t dscp,
                 uint16_t inner_len, uint8_t ecn = 0);

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
/// Traffic class byte (DSCP << 2 | ECN) of the IPv4 or IPv6 header at `ip`.
inline uint8_t traffic_class(const uint8_t* ip, uint8_t version) {
  return version == 4 ? ip[1] : static_cast<uint8_t>((ip[0] & 0x0f) << 4 | ip[1] >> 4);
}
/// Rewrites that byte; IPv4 keeps a valid header checksum by the RFC 1624
/// incremental update. The caller guarantees the header is present.
void set_traffic_class(uint8_t* ip, uint8_t version, uint8_t tc);
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
/// reported before a bad checksum.
UnderlayStatus classify_underlay(const uint8_t* frame, size_t len, uint16_t vxlan_port, OuterView& out);

// ---- path MTU signalling --------------------------------------------------------

inline constexpr size_t kTooBigMax = kEthHeader + kIpv6Header + 8 + 1232;  // IPv6: fits the 1280 minimum
/// For an untagged inner frame that cannot cross the tunnel, writes at `out`
/// (capacity kTooBigMax) the frame that tells its sender: ICMP Fragmentation
/// Needed (type 3 code 4, RFC 1191) for IPv4 with DF, ICMPv6 Packet Too Big
/// (RFC 4443) for IPv6, with `mtu` as the usable inner IP MTU. Meridian is L2
/// in the overlay, so the reply comes from the packet's destination (its MAC
/// and IP), which is what PMTU discovery keys on. Returns the length, or 0
/// when no reply is due (not IP, IPv4 without DF, an ICMP error itself,
/// non-first fragment, multicast source).
size_t build_too_big(uint8_t* out, const uint8_t* frame, size_t len, uint16_t mtu);

// ---- ARP and IPv6 neighbour discovery ---------------------------------------

inline constexpr size_t kArpFrame = kEthHeader + 28;  // 42
inline constexpr uint16_t kArpRequest = 1, kArpReply = 2;

struct ArpView {
  uint16_t op = 0;
  const uint8_t* sender_mac = nullptr;
  const uint8_t* sender_ip = nullptr;
  const uint8_t* target_mac = nullptr;
  const uint8_t* target_ip = nullptr;
};
/// Parses an Ethernet/IPv4 ARP body (starting after the EtherType).
bool parse_arp(const uint8_t* body, size_t len, ArpView& out);
/// Writes a complete ARP frame (42 bytes) at `out`; returns its length.
size_t build_arp(uint8_t* out, uint16_t op, const uint8_t* eth_dst, const uint8_t* sender_mac,
                 const uint8_t* sender_ip, const uint8_t* target_mac, const uint8_t* target_ip);

struct NdView {
  uint8_t type = 0;                    // 135 NS, 136 NA
  const uint8_t* src_ip = nullptr;
  const uint8_t* dst_ip = nullptr;
  const uint8_t* target = nullptr;     // NS/NA target address
  const uint8_t* link_addr = nullptr;  // source (NS) or target (NA) link-layer option, may be null
  bool solicited = false;              // NA S flag
  bool override_flag = false;          // NA O flag
};
/// Parses an IPv6 packet (at its header) carrying ICMPv6 NS or NA; checks
/// hop limit 255, lengths and the ICMPv6 checksum (RFC 4861 §7.1).
bool parse_nd(const uint8_t* ip6, size_t len, NdView& out);

inline constexpr size_t kNdFrame = kEthHeader + kIpv6Header + 32;  // NS/NA with one LL option: 86
/// Neighbour solicitation from `src_ip` for `target`, to its solicited-node group.
size_t build_ns(uint8_t* out, const uint8_t* src_mac, const uint8_t* src_ip, const uint8_t* target);
/// Neighbour advertisement for `target` owned by `target_mac`, solicited, override.
size_t build_na(uint8_t* out, const uint8_t* eth_dst, const uint8_t* target_mac, const uint8_t* target,
                const uint8_t* dst_ip, bool solicited);
/// ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
void solicited_node(const uint8_t* target, uint8_t* group_ip, uint8_t* group_mac);

}  // namespace meridian::vxlan
