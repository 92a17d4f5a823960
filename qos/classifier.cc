#include "qos/classifier.h"

#include <cstring>

#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/packet_meta.h"
#include "net/wire.h"

namespace meridian::qos {
namespace {

/// Fills `f` from a parsed view; returns the outer traffic class byte.
uint8_t read_flow(const uint8_t* data, const net::PacketView& v, FlowKeys& f) {
  f = FlowKeys{};
  if (v.ip_version == 0) return 0;
  const uint8_t* ip = data + v.l3_offset;
  f.ip_version = v.ip_version;
  f.protocol = v.l4_proto;
  if (v.ip_version == 4) {
    std::memcpy(f.src.data(), ip + 12, 4);
    std::memcpy(f.dst.data(), ip + 16, 4);
  } else {
    std::memcpy(f.src.data(), ip + 8, 16);
    std::memcpy(f.dst.data(), ip + 24, 16);
  }
  if (v.l4_offset) {
    f.has_ports = true;
    f.src_port = v.src_port;
    f.dst_port = v.dst_port;
  }
  return net::traffic_class(ip, v.ip_version);
}

}  // namespace

void read_packet_keys(const uint8_t* data, size_t len, uint16_t ingress_port, uint16_t vxlan_udp_port,
                      PacketKeys& k) {
  net::PacketMeta meta;
  net::parse_meta(data, len, vxlan_udp_port, meta);
  net::parse_inner(data, len, meta);
  read_packet_keys(data, meta, ingress_port, k);
}

void read_packet_keys(const uint8_t* data, const net::PacketMeta& meta, uint16_t ingress_port, PacketKeys& k) {
  k = PacketKeys{};
  k.ingress_port = ingress_port;
  const net::PacketView& v = meta.outer;  // partial views are fine: see the header
  if (v.vlan_count) {
    k.tagged = true;
    k.pcp = v.vlan_pcp(0);
  }
  const uint8_t tc = read_flow(data, v, k.outer);
  if (k.outer.ip_version == 0) return;
  k.l3_offset = v.l3_offset;
  k.dscp = tc >> 2;
  k.ecn = tc & 3;
  if (!meta.has(net::kMetaVni)) return;
  k.has_vni = true;
  k.vni = meta.vni;
  if (meta.has(net::kMetaInnerParsed)) read_flow(data + meta.inner_offset, meta.inner, k.inner);
}

bool PrefixMatch::matches(uint8_t version, const std::array<uint8_t, 16>& addr) const {
  if (version != ip_version) return false;
  const unsigned full = length / 8, rest = length % 8;
  if (std::memcmp(addr.data(), bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == (bytes[full] & mask);
}

bool FlowMatchSpec::matches(const FlowKeys& f) const {
  if (protocol && (f.ip_version == 0 || f.protocol != *protocol)) return false;
  if (src && !src->matches(f.ip_version, f.src)) return false;
  if (dst && !dst->matches(f.ip_version, f.dst)) return false;
  if (src_ports && (!f.has_ports || f.src_port < src_ports->first || f.src_port > src_ports->last)) return false;
  if (dst_ports && (!f.has_ports || f.dst_port < dst_ports->first || f.dst_port > dst_ports->last)) return false;
  return true;
}

bool RuleSpec::matches(const PacketKeys& k) const {
  if (dscp_mask && (k.outer.ip_version == 0 || !(dscp_mask >> k.dscp & 1))) return false;
  if (pcp_mask && (!k.tagged || !(pcp_mask >> k.pcp & 1))) return false;
  if (vni && (!k.has_vni || k.vni != *vni)) return false;
  if (ingress_port && k.ingress_port != *ingress_port) return false;
  if (!outer.matches(k.outer)) return false;
  if (inner && (!k.has_vni || !inner->matches(k.inner))) return false;
  return true;
}

namespace {

/// The outer IP header when it lies within `len` bytes, else null.
uint8_t* outer_ip(uint8_t* frame, size_t len, const PacketKeys& k) {
  if (k.outer.ip_version == 0) return nullptr;
  const size_t header = k.outer.ip_version == 4 ? net::kIpv4Header : net::kIpv6Header;
  return len >= size_t{k.l3_offset} + header ? frame + k.l3_offset : nullptr;
}

}  // namespace

void rewrite_dscp(uint8_t* frame, size_t len, const PacketKeys& k, uint8_t dscp) {
  if (uint8_t* ip = outer_ip(frame, len, k)) {
    net::set_traffic_class(ip, k.outer.ip_version, static_cast<uint8_t>(dscp << 2 | (net::traffic_class(ip, k.outer.ip_version) & 3)));
  }
}

void mark_ce(uint8_t* frame, size_t len, const PacketKeys& k) {
  uint8_t* ip = outer_ip(frame, len, k);
  if (!ip) return;
  const uint8_t tc = net::traffic_class(ip, k.outer.ip_version);
  if ((tc & 3) == 0) return;  // never on a not-ECN-capable packet
  net::set_traffic_class(ip, k.outer.ip_version, tc | 3);
}

}  // namespace meridian::qos
