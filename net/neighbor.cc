#include "net/neighbor.h"

#include <cstring>

#include "net/checksum.h"

namespace meridian::net {

bool parse_arp(const uint8_t* b, size_t len, ArpView& out) {
  if (len < 28) return false;
  if (be16(b) != 1 || be16(b + 2) != kEtherIpv4 || b[4] != 6 || b[5] != 4) return false;
  out.op = be16(b + 6);
  if (out.op != kArpRequest && out.op != kArpReply) return false;
  out.sender_mac = b + 8;
  out.sender_ip = b + 14;
  out.target_mac = b + 18;
  out.target_ip = b + 24;
  return true;
}

size_t build_arp(uint8_t* o, uint16_t op, const uint8_t* eth_dst, const uint8_t* sender_mac,
                 const uint8_t* sender_ip, const uint8_t* target_mac, const uint8_t* target_ip) {
  // Every argument may point into `o` (a reply built in place over the
  // request), so all of them are copied out before anything is written.
  uint8_t dst[6], smac[6], sip[4], tmac[6], tip[4];
  std::memcpy(dst, eth_dst, 6);
  std::memcpy(smac, sender_mac, 6);
  std::memcpy(sip, sender_ip, 4);
  std::memcpy(tmac, target_mac, 6);
  std::memcpy(tip, target_ip, 4);
  std::memcpy(o, dst, 6);
  std::memcpy(o + 6, smac, 6);
  put16(o + 12, kEtherArp);
  put16(o + 14, 1);  // htype Ethernet
  put16(o + 16, kEtherIpv4);
  o[18] = 6;
  o[19] = 4;
  put16(o + 20, op);
  std::memcpy(o + 22, smac, 6);  // sender hardware address
  std::memcpy(o + 28, sip, 4);   // sender protocol address
  std::memcpy(o + 32, tmac, 6);  // target hardware address
  std::memcpy(o + 38, tip, 4);   // target protocol address
  return kArpFrame;
}

bool parse_nd(const uint8_t* ip, size_t len, NdView& out) {
  out = NdView{};
  if (len < kIpv6Header + 24 || (ip[0] >> 4) != 6 || ip[6] != kProtoIcmpv6 || ip[7] != 255) return false;
  const size_t payload = be16(ip + 4);
  if (payload < 24 || payload > len - kIpv6Header) return false;
  const uint8_t* icmp = ip + kIpv6Header;
  if ((icmp[0] != kNdNeighborSolicit && icmp[0] != kNdNeighborAdvert) || icmp[1] != 0) return false;
  uint32_t sum = ipv6_pseudo_sum(ip + 8, ip + 24, static_cast<uint32_t>(payload), kProtoIcmpv6);
  if (checksum_finish(checksum_add(icmp, payload, sum)) != 0) return false;
  out.type = icmp[0];
  out.src_ip = ip + 8;
  out.dst_ip = ip + 24;
  out.target = icmp + 8;
  if (out.target[0] == 0xff) return false;  // target must not be multicast
  out.solicited = icmp[4] & 0x40;
  out.override_flag = icmp[4] & 0x20;
  const uint8_t wanted = icmp[0] == kNdNeighborSolicit ? 1 : 2;  // source / target link-layer address
  for (size_t off = 24; off + 2 <= payload;) {
    const size_t opt_len = size_t{icmp[off + 1]} * 8;
    if (opt_len == 0 || off + opt_len > payload) return false;
    if (icmp[off] == wanted && opt_len >= 8) out.link_addr = icmp + off + 2;
    off += opt_len;
  }
  return true;
}

void solicited_node(const uint8_t* target, uint8_t* group_ip, uint8_t* group_mac) {
  static const uint8_t kPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
  std::memcpy(group_ip, kPrefix, 13);
  std::memcpy(group_ip + 13, target + 13, 3);
  group_mac[0] = 0x33;
  group_mac[1] = 0x33;
  std::memcpy(group_mac + 2, group_ip + 12, 4);
}

namespace {

size_t build_nd(uint8_t* o, const uint8_t* eth_dst, const uint8_t* eth_src, const uint8_t* src_ip,
                const uint8_t* dst_ip, uint8_t type, uint8_t flags, const uint8_t* target, uint8_t option) {
  uint8_t tgt[16], sip[16], dip[16], dmac[6], smac[6];
  std::memcpy(tgt, target, 16);
  std::memcpy(sip, src_ip, 16);
  std::memcpy(dip, dst_ip, 16);
  std::memcpy(dmac, eth_dst, 6);
  std::memcpy(smac, eth_src, 6);
  std::memset(o, 0, kNdFrame);
  std::memcpy(o, dmac, 6);
  std::memcpy(o + 6, smac, 6);
  put16(o + 12, kEtherIpv6);
  uint8_t* ip = o + kEthHeader;
  ip[0] = 0x60;
  put16(ip + 4, 32);
  ip[6] = kProtoIcmpv6;
  ip[7] = 255;
  std::memcpy(ip + 8, sip, 16);
  std::memcpy(ip + 24, dip, 16);
  uint8_t* icmp = ip + kIpv6Header;
  icmp[0] = type;
  icmp[4] = flags;
  std::memcpy(icmp + 8, tgt, 16);
  icmp[24] = option;
  icmp[25] = 1;
  std::memcpy(icmp + 26, smac, 6);
  const uint32_t sum = ipv6_pseudo_sum(sip, dip, 32, kProtoIcmpv6);
  put16(icmp + 2, checksum_finish(checksum_add(icmp, 32, sum)));
  return kNdFrame;
}

}  // namespace

size_t build_ns(uint8_t* out, const uint8_t* src_mac, const uint8_t* src_ip, const uint8_t* target,
                const uint8_t* probe_mac) {
  if (probe_mac) return build_nd(out, probe_mac, src_mac, src_ip, target, kNdNeighborSolicit, 0, target, 1);
  uint8_t group_ip[16], group_mac[6];
  solicited_node(target, group_ip, group_mac);
  return build_nd(out, group_mac, src_mac, src_ip, group_ip, kNdNeighborSolicit, 0, target, 1);
}

size_t build_na(uint8_t* out, const uint8_t* eth_dst, const uint8_t* target_mac, const uint8_t* target,
                const uint8_t* dst_ip, bool solicited) {
  return build_nd(out, eth_dst, target_mac, target, dst_ip, kNdNeighborAdvert,
                  static_cast<uint8_t>((solicited ? 0x40 : 0) | 0x20), target, 2);
}

}  // namespace meridian::net
