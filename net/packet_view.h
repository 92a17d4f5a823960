// Header views over raw frame bytes: Ethernet, up to two VLAN tags, IPv4 or
// IPv6, UDP or TCP. Pure and allocation-free; no DPDK types, so the parser
// is unit-tested, fuzzed and micro-benchmarked on plain buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/wire.h"

namespace meridian::net {

enum class ParseStatus : uint8_t {
  kOk,
  kRunt,            // shorter than an Ethernet header
  kTruncatedVlan,   // VLAN tag cut short
  kTruncatedL3,     // IP header cut short or inconsistent lengths
  kBadIpHeader,     // IPv4 IHL < 5 or version mismatch
  kTruncatedL4,     // UDP/TCP header cut short
};

struct PacketView {
  uint16_t ethertype = 0;       // after any VLAN tags (a tag cut short: its TPID)
  uint8_t vlan_count = 0;
  uint16_t vlan_tci[2] = {0, 0};
  uint16_t l3_offset = 0;
  uint8_t ip_version = 0;       // 0 when not IP
  uint8_t l4_proto = 0;         // IPv4 protocol / IPv6 next header (no extension walk)
  uint16_t l4_offset = 0;       // 0 when no L4 header parsed
  uint16_t src_port = 0, dst_port = 0;
  bool ip_fragment = false;     // non-first fragment: no L4 header to read

  uint16_t vlan_id(int i) const { return vlan_tci[i] & 0x0fff; }
  uint8_t vlan_pcp(int i) const { return static_cast<uint8_t>(vlan_tci[i] >> 13); }
};

/// The EtherType after up to two VLAN tags, as parse_packet reads it (a
/// tag cut short gives its TPID), without reading further: for a stage that
/// only dispatches on it.
inline uint16_t ethertype_after_tags(const uint8_t* data, size_t len) {
  uint16_t type = be16(data + 12);
  for (size_t off = 14; (type == kEtherVlan || type == kEtherQinQ) && off <= 18 && len >= off + 4; off += 4) {
    type = be16(data + off + 2);
  }
  return type;
}

/// Parses as far as the headers go. Anything past what was understood is
/// left alone: an unknown EtherType is kOk with ip_version 0.
inline ParseStatus parse_packet(const uint8_t* data, size_t len, PacketView& v) {
  v = PacketView{};
  if (len < 14) return ParseStatus::kRunt;
  size_t off = 14;
  uint16_t type = be16(data + 12);
  // Two tags at most, each by a constant index: callers' local views then
  // stay in registers (a variable index would pin them to the stack).
  auto tag = [&](uint16_t& tci) {
    if (type != kEtherVlan && type != kEtherQinQ) return true;
    if (len < off + 4) return false;
    tci = be16(data + off);
    type = be16(data + off + 2);
    off += 4;
    ++v.vlan_count;
    return true;
  };
  if (!tag(v.vlan_tci[0]) || !tag(v.vlan_tci[1])) {
    v.ethertype = type;  // the tag's TPID: described as far as it goes
    return ParseStatus::kTruncatedVlan;
  }
  v.ethertype = type;
  v.l3_offset = static_cast<uint16_t>(off);

  size_t l4 = 0;
  if (type == kEtherIpv4) {
    if (len < off + 20) return ParseStatus::kTruncatedL3;
    const uint8_t* ip = data + off;
    if ((ip[0] >> 4) != 4) return ParseStatus::kBadIpHeader;
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    if (ihl < 20) return ParseStatus::kBadIpHeader;
    const size_t total = be16(ip + 2);
    if (total < ihl || len < off + total || len < off + ihl) return ParseStatus::kTruncatedL3;
    v.ip_version = 4;
    v.l4_proto = ip[9];
    v.ip_fragment = (be16(ip + 6) & 0x1fff) != 0;
    l4 = off + ihl;
  } else if (type == kEtherIpv6) {
    if (len < off + 40) return ParseStatus::kTruncatedL3;
    const uint8_t* ip = data + off;
    if ((ip[0] >> 4) != 6) return ParseStatus::kBadIpHeader;
    if (len < off + 40 + be16(ip + 4)) return ParseStatus::kTruncatedL3;
    v.ip_version = 6;
    v.l4_proto = ip[6];
    l4 = off + 40;
  } else {
    return ParseStatus::kOk;
  }

  if (v.ip_fragment || (v.l4_proto != kProtoUdp && v.l4_proto != kProtoTcp)) {
    return ParseStatus::kOk;
  }
  const size_t need = v.l4_proto == kProtoUdp ? 8 : 20;
  if (len < l4 + need) return ParseStatus::kTruncatedL4;
  v.l4_offset = static_cast<uint16_t>(l4);
  v.src_port = be16(data + l4);
  v.dst_port = be16(data + l4 + 2);
  return ParseStatus::kOk;
}

}  // namespace meridian::net
