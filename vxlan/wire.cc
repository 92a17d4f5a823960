#include "vxlan/wire.h"

#include <algorithm>

namespace meridian::vxlan {

void build_outer_template(OuterTemplate& t, const OuterParams& p) {
  t = OuterTemplate{};
  t.ipv6 = p.ipv6;
  t.length = static_cast<uint8_t>(p.ipv6 ? kOuterV6 : kOuterV4);
  uint8_t* b = t.bytes;
  std::memcpy(b, p.dst_mac, 6);
  std::memcpy(b + 6, p.src_mac, 6);
  put16(b + 12, p.ipv6 ? kEtherIpv6 : kEtherIpv4);
  uint8_t* ip = b + kEthHeader;
  uint8_t* udp;
  if (p.ipv6) {
    ip[0] = 0x60;
    ip[6] = kProtoUdp;
    ip[7] = p.ttl;
    std::memcpy(ip + 8, p.src_ip, 16);
    std::memcpy(ip + 24, p.dst_ip, 16);
    udp = ip + kIpv6Header;
  } else {
    ip[0] = 0x45;
    ip[6] = 0x40;  // DF: VXLAN frames are never fragmented
    ip[8] = p.ttl;
    ip[9] = kProtoUdp;
    std::memcpy(ip + 12, p.src_ip, 4);
    std::memcpy(ip + 16, p.dst_ip, 4);
    udp = ip + kIpv4Header;
  }
  put16(udp + 2, p.udp_port);
  udp[kUdpHeader] = kVxlanFlagI;
  if (!p.ipv6) t.ip_sum = checksum_add(ip, kIpv4Header, 0);  // TOS, length and checksum are still zero
}

void finish_udp6_checksum(uint8_t* outer) {
  uint8_t* ip = outer + kEthHeader;
  uint8_t* udp = ip + kIpv6Header;
  const uint16_t udp_len = be16(udp + 4);
  put16(udp + 6, 0);
  const uint32_t sum = ipv6_pseudo_sum(ip + 8, ip + 24, udp_len, kProtoUdp);
  const uint16_t c = checksum_finish(checksum_add(udp, udp_len, sum));
  put16(udp + 6, c == 0 ? 0xffff : c);
}

namespace {

inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

inline uint64_t load_bytes(const uint8_t* p, size_t n) {
  // Whole-width loads only (a partial copy into a zeroed word would stall
  // store-to-load forwarding when the word is read back).
  uint64_t v;
  uint32_t w;
  uint16_t h;
  switch (n) {
    case 8:
      std::memcpy(&v, p, 8);
      return v;
    case 6:
      std::memcpy(&w, p, 4);
      std::memcpy(&h, p + 4, 2);
      return uint64_t{w} | uint64_t{h} << 32;
    default:
      std::memcpy(&w, p, 4);
      return w;
  }
}

/// Offset just past the EtherType (after at most one VLAN tag); `type` is
/// that EtherType. The frame must hold an Ethernet header.
size_t inner_l3(const uint8_t* f, size_t len, uint16_t& type) {
  size_t off = 12;
  type = be16(f + off);
  if (type == kEtherVlan && len >= off + 6) {
    off += 4;
    type = be16(f + off);
  }
  return off + 2;
}

/// Offset of the inner IP header (after at most one VLAN tag) and its version, or 0.
size_t inner_ip(const uint8_t* f, size_t len, uint8_t& version) {
  version = 0;
  if (len < kEthHeader) return 0;
  uint16_t type;
  const size_t off = inner_l3(f, len, type);
  if (type == kEtherIpv4 && len >= off + kIpv4Header && (f[off] >> 4) == 4) version = 4;
  else if (type == kEtherIpv6 && len >= off + kIpv6Header && (f[off] >> 4) == 6) version = 6;
  return version ? off : 0;
}

}  // namespace

uint32_t inner_flow_hash(const uint8_t* f, size_t len) {
  if (len < kEthHeader) return 0;
  uint64_t h = mix(0, load_bytes(f, 8));
  h = mix(h, load_bytes(f + 8, 6));
  uint16_t type;
  const size_t off = inner_l3(f, len, type);
  h = mix(h, type);
  if (type == kEtherIpv4 && len >= off + kIpv4Header) {
    const uint8_t* ip = f + off;
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    h = mix(h, load_bytes(ip + 12, 8));
    h = mix(h, ip[9]);
    const bool first_fragment = (be16(ip + 6) & 0x1fff) == 0;
    if (first_fragment && (ip[9] == kProtoUdp || ip[9] == kProtoTcp) && ihl >= kIpv4Header &&
        len >= off + ihl + 4) {
      h = mix(h, load_bytes(ip + ihl, 4));
    }
  } else if (type == kEtherIpv6 && len >= off + kIpv6Header) {
    const uint8_t* ip = f + off;
    h = mix(h, load_bytes(ip + 8, 8));
    h = mix(h, load_bytes(ip + 16, 8));
    h = mix(h, load_bytes(ip + 24, 8));
    h = mix(h, load_bytes(ip + 32, 8));
    h = mix(h, ip[6]);
    if ((ip[6] == kProtoUdp || ip[6] == kProtoTcp) && len >= off + kIpv6Header + 4) {
      h = mix(h, load_bytes(ip + kIpv6Header, 4));
    }
  }
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return static_cast<uint32_t>(h);
}

uint8_t inner_dscp(const uint8_t* f, size_t len) {
  // Only the first two bytes of the IP header are needed.
  if (len < kEthHeader) return 0;
  uint16_t type;
  const size_t off = inner_l3(f, len, type);
  if (len < off + 2) return 0;
  if (type == kEtherIpv4 && (f[off] >> 4) == 4) return f[off + 1] >> 2;
  if (type == kEtherIpv6 && (f[off] >> 4) == 6) return static_cast<uint8_t>(((f[off] & 0x0f) << 2) | (f[off + 1] >> 6));
  return 0;
}


uint8_t inner_ecn(const uint8_t* f, size_t len) {
  uint8_t v;
  const size_t off = inner_ip(f, len, v);
  if (!off) return 0;
  return v == 4 ? f[off + 1] & 3 : (f[off + 1] >> 4) & 3;
}

bool ecn_decapsulate(uint8_t outer, uint8_t* f, size_t len) {
  if ((outer & 3) != 3) return true;  // only CE is propagated
  uint8_t v;
  const size_t off = inner_ip(f, len, v);
  if (!off) return true;  // not IP: nothing to mark
  uint8_t* ip = f + off;
  const uint8_t tc = traffic_class(ip, v);
  if ((tc & 3) == 0) return false;
  if ((tc & 3) != 3) set_traffic_class(ip, v, tc | 3);
  return true;
}

const char* underlay_status_name(UnderlayStatus s) {
  switch (s) {
#define MERIDIAN_US_NAME(e, n) \
  case UnderlayStatus::e:      \
    return n;
    MERIDIAN_UNDERLAY_STATUS(MERIDIAN_US_NAME)
#undef MERIDIAN_US_NAME
  }
  return "?";
}

UnderlayStatus classify_underlay(const uint8_t* f, size_t len, uint16_t vxlan_port, OuterView& out) {
  net::PacketMeta meta;
  net::parse_meta(f, len, vxlan_port, meta);
  return classify_underlay(f, meta, vxlan_port, out);
}

UnderlayStatus classify_underlay(const uint8_t* f, const net::PacketMeta& meta, uint16_t vxlan_port,
                                 OuterView& out) {
  const net::PacketView& v = meta.outer;
  // The common case first: VXLAN with the I flag over untagged IPv4
  // without options. Whatever fails here is looked at again below, which
  // names the reason.
  if (meta.has(net::kMetaVni) && v.l4_offset == kEthHeader + kIpv4Header && v.ip_version == 4 &&
      v.dst_port == vxlan_port) {
    const uint8_t* ip = f + kEthHeader;
    const size_t udp_len = be16(ip + kIpv4Header + 4);
    if (net::ipv4_header_checksum_ok(ip, kIpv4Header) && (be16(ip + 6) & 0x3fff) == 0 &&
        udp_len >= kUdpHeader + kVxlanHeader + kEthHeader && udp_len + kIpv4Header <= be16(ip + 2)) {
      out.ipv6 = false;
      out.src_ip = ip + 12;
      out.dst_ip = ip + 16;
      out.inner_offset = meta.inner_offset;
      out.inner_length = static_cast<uint16_t>(udp_len - kUdpHeader - kVxlanHeader);
      out.vni = meta.vni;
      out.l3_offset = kEthHeader;
      return UnderlayStatus::kVxlan;
    }
  }
  out = OuterView{};
  if (meta.status == net::ParseStatus::kRunt) return UnderlayStatus::kTruncated;
  out.l3_offset = kEthHeader;
  // The underlay is untagged: a tagged frame counts as another EtherType.
  if (v.vlan_count || (v.ethertype != kEtherIpv4 && v.ethertype != kEtherIpv6)) {
    return v.ethertype == kEtherArp && !v.vlan_count ? UnderlayStatus::kArp : UnderlayStatus::kOtherEtherType;
  }
  // The metadata has checked the IP header's version, length and total length.
  if (meta.status == net::ParseStatus::kTruncatedL3) return UnderlayStatus::kTruncated;
  if (meta.status == net::ParseStatus::kBadIpHeader) return UnderlayStatus::kBadIpHeader;
  const uint8_t* ip = f + kEthHeader;
  const uint8_t* udp;
  size_t udp_avail;
  if (v.ip_version == 4) {
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    if (!net::ipv4_header_checksum_ok(ip, ihl)) return UnderlayStatus::kBadIpHeader;
    if ((be16(ip + 6) & 0x3fff) != 0) return UnderlayStatus::kFragment;  // MF or offset
    if (v.l4_proto != kProtoUdp) return UnderlayStatus::kNotVxlan;
    out.src_ip = ip + 12;
    out.dst_ip = ip + 16;
    udp = ip + ihl;
    udp_avail = be16(ip + 2) - ihl;
  } else {
    out.ipv6 = true;
    out.src_ip = ip + 8;
    out.dst_ip = ip + 24;
    if (v.l4_proto == kProtoIcmpv6) {
      return meta.has(net::kMetaNd) ? UnderlayStatus::kNeighborDiscovery : UnderlayStatus::kNotVxlan;
    }
    if (v.l4_proto == 44) return UnderlayStatus::kFragment;
    if (v.l4_proto != kProtoUdp) return UnderlayStatus::kNotVxlan;  // extension headers are not walked
    udp = ip + kIpv6Header;
    udp_avail = be16(ip + 4);
  }
  if (udp_avail < kUdpHeader) return UnderlayStatus::kTruncated;
  if (be16(udp + 2) != vxlan_port) return UnderlayStatus::kNotVxlan;
  const size_t udp_len = be16(udp + 4);
  if (udp_len < kUdpHeader + kVxlanHeader + kEthHeader || udp_len > udp_avail) return UnderlayStatus::kTruncated;
  const uint8_t* vx = udp + kUdpHeader;
  if (!(vx[0] & kVxlanFlagI)) return UnderlayStatus::kNoIFlag;
  if (out.ipv6) {
    if (be16(udp + 6) == 0) return UnderlayStatus::kBadChecksum;
    const uint32_t sum = ipv6_pseudo_sum(out.src_ip, out.dst_ip, static_cast<uint32_t>(udp_len), kProtoUdp);
    if (checksum_finish(checksum_add(udp, udp_len, sum)) != 0) return UnderlayStatus::kBadChecksum;
  }
  out.vni = uint32_t{vx[4]} << 16 | uint32_t{vx[5]} << 8 | vx[6];
  out.inner_offset = static_cast<uint16_t>(vx + kVxlanHeader - f);
  out.inner_length = static_cast<uint16_t>(udp_len - kUdpHeader - kVxlanHeader);
  return UnderlayStatus::kVxlan;
}

}  // namespace meridian::vxlan
