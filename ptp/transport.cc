#include "ptp/transport.h"

#include <algorithm>
#include <cstring>

#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/packet_view.h"
#include "net/wire.h"

namespace meridian::ptp {

namespace {

constexpr size_t kEth = 14, kIpv4 = 20, kIpv6 = 40, kUdp = 8;
using net::put16;

}  // namespace

const char* transport_name(Transport t) {
  switch (t) {
    case Transport::kL2: return "l2";
    case Transport::kUdpIpv4: return "udpv4";
    case Transport::kUdpIpv6: return "udpv6";
  }
  return "unknown";
}

void set_multicast_destination(FrameAddresses& a, bool peer_delay) {
  a.dst_ip = {};
  switch (a.transport) {
    case Transport::kL2:
      a.dst_mac = peer_delay ? kMacPeerDelay : kMacPrimary;
      break;
    case Transport::kUdpIpv4: {
      const auto& ip = peer_delay ? kIpv4PeerDelay : kIpv4Primary;
      std::memcpy(a.dst_ip.data(), ip.data(), ip.size());
      // RFC 1112 §6.4: 01:00:5e + the low 23 bits of the group.
      a.dst_mac = {0x01, 0x00, 0x5e, static_cast<uint8_t>(ip[1] & 0x7f), ip[2], ip[3]};
      break;
    }
    case Transport::kUdpIpv6: {
      a.dst_ip = peer_delay ? kIpv6PeerDelay : kIpv6Primary;
      // RFC 2464 §7: 33:33 + the low 32 bits of the group.
      a.dst_mac = {0x33, 0x33, a.dst_ip[12], a.dst_ip[13], a.dst_ip[14], a.dst_ip[15]};
      break;
    }
  }
}

size_t frame_header_size(Transport t) {
  switch (t) {
    case Transport::kL2: return kEth;
    case Transport::kUdpIpv4: return kEth + kIpv4 + kUdp;
    case Transport::kUdpIpv6: return kEth + kIpv6 + kUdp;
  }
  return 0;
}

size_t build_frame(const FrameAddresses& a, bool event, std::span<const uint8_t> msg, std::span<uint8_t> out) {
  const size_t hdr = frame_header_size(a.transport);
  const size_t len = hdr + msg.size();
  if (out.size() < len || msg.size() > 1500) return 0;
  uint8_t* f = out.data();
  std::memcpy(f, a.dst_mac.data(), 6);
  std::memcpy(f + 6, a.src_mac.data(), 6);
  std::memcpy(f + hdr, msg.data(), msg.size());
  if (a.transport == Transport::kL2) {
    put16(f + 12, kEtherTypePtp);
    return len;
  }
  const uint16_t port = event ? kEventPort : kGeneralPort;
  const uint16_t udp_len = static_cast<uint16_t>(kUdp + msg.size());
  uint8_t* udp = f + hdr - kUdp;
  put16(udp, port);
  put16(udp + 2, port);
  put16(udp + 4, udp_len);
  put16(udp + 6, 0);
  uint32_t sum = 0;
  if (a.transport == Transport::kUdpIpv4) {
    put16(f + 12, net::kEtherIpv4);
    uint8_t* ip = f + kEth;
    ip[0] = 0x45;
    ip[1] = static_cast<uint8_t>(a.dscp << 2);
    put16(ip + 2, static_cast<uint16_t>(kIpv4 + udp_len));
    put16(ip + 4, 0);       // identification: never fragmented
    put16(ip + 6, 0x4000);  // DF
    ip[8] = a.ttl;
    ip[9] = net::kProtoUdp;
    put16(ip + 10, 0);
    std::memcpy(ip + 12, a.src_ip.data(), 4);
    std::memcpy(ip + 16, a.dst_ip.data(), 4);
    put16(ip + 10, net::ipv4_header_checksum(ip, kIpv4));
    sum = net::ipv4_pseudo_sum(ip + 12, ip + 16, udp_len, net::kProtoUdp);
  } else {
    put16(f + 12, net::kEtherIpv6);
    uint8_t* ip = f + kEth;
    ip[0] = static_cast<uint8_t>(0x60 | a.dscp >> 2);
    ip[1] = static_cast<uint8_t>((a.dscp & 3) << 6);
    ip[2] = ip[3] = 0;
    put16(ip + 4, udp_len);
    ip[6] = net::kProtoUdp;
    ip[7] = a.ttl;
    std::memcpy(ip + 8, a.src_ip.data(), 16);
    std::memcpy(ip + 24, a.dst_ip.data(), 16);
    sum = net::ipv6_pseudo_sum(ip + 8, ip + 24, udp_len, net::kProtoUdp);
  }
  sum = net::checksum_add(udp, kUdp, sum);
  sum = net::checksum_add(msg.data(), msg.size(), sum);
  uint16_t csum = net::checksum_finish(sum);
  if (csum == 0) csum = 0xffff;  // RFC 768: a computed zero is sent as all ones
  put16(udp + 6, csum);
  return len;
}

bool locate(std::span<const uint8_t> frame, PtpLocation& loc) {
  net::PacketView v;
  const auto status = net::parse_packet(frame.data(), frame.size(), v);
  return locate(frame, v, status, loc);
}

bool locate(std::span<const uint8_t> frame, const net::PacketView& v, net::ParseStatus status,
            PtpLocation& loc) {
  if (v.ethertype == kEtherTypePtp && v.l3_offset <= frame.size()) {
    const size_t payload = std::min<size_t>(frame.size() - v.l3_offset, UINT16_MAX);
    loc = PtpLocation{Transport::kL2, v.l3_offset, static_cast<uint16_t>(payload), false, 0};
    if (loc.length >= 1) loc.event_port = (frame[v.l3_offset] & 0x0f) < 0x8;
    return true;
  }
  if (status != net::ParseStatus::kOk || v.l4_proto != net::kProtoUdp || !v.l4_offset ||
      v.ip_fragment) {
    return false;
  }
  if (v.dst_port != kEventPort && v.dst_port != kGeneralPort) return false;
  const size_t udp = v.l4_offset;
  const uint16_t udp_len = net::be16(frame.data() + udp + 4);
  if (udp_len < kUdp || udp + udp_len > frame.size()) return false;
  loc.transport = v.ip_version == 4 ? Transport::kUdpIpv4 : Transport::kUdpIpv6;
  loc.offset = static_cast<uint16_t>(udp + kUdp);
  loc.length = static_cast<uint16_t>(udp_len - kUdp);
  loc.event_port = v.dst_port == kEventPort;
  loc.udp_offset = static_cast<uint16_t>(udp);
  return true;
}

}  // namespace meridian::ptp
