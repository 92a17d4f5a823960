// PTP transports (IEEE 1588-2019 Annex C, D, E): Ethernet (EtherType 0x88F7),
// UDP over IPv4 and UDP over IPv6, event messages on port 319 and general
// ones on 320. Builds whole frames around an encoded message and finds the
// message inside a received frame. Pure: plain byte buffers, no DPDK.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "net/packet_view.h"

namespace meridian::ptp {

enum class Transport : uint8_t { kL2, kUdpIpv4, kUdpIpv6 };
const char* transport_name(Transport t);

inline constexpr uint16_t kEtherTypePtp = 0x88f7;
inline constexpr uint16_t kEventPort = 319;
inline constexpr uint16_t kGeneralPort = 320;

// Multicast destinations: the primary groups and the peer-delay groups
// (also G.8275.1's forwardable-or-not L2 address 01:80:C2:00:00:0E).
inline constexpr std::array<uint8_t, 6> kMacPrimary{0x01, 0x1b, 0x19, 0x00, 0x00, 0x00};
inline constexpr std::array<uint8_t, 6> kMacPeerDelay{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e};
inline constexpr std::array<uint8_t, 4> kIpv4Primary{224, 0, 1, 129};
inline constexpr std::array<uint8_t, 4> kIpv4PeerDelay{224, 0, 0, 107};
inline constexpr std::array<uint8_t, 16> kIpv6Primary{0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x81};
inline constexpr std::array<uint8_t, 16> kIpv6PeerDelay{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x6b};

/// Addresses of one frame. IPv4 addresses sit in the first 4 bytes.
struct FrameAddresses {
  Transport transport = Transport::kUdpIpv4;
  std::array<uint8_t, 6> src_mac{}, dst_mac{};
  std::array<uint8_t, 16> src_ip{}, dst_ip{};
  uint8_t ttl = 1;   // ptp4l's udp_ttl default: multicast PTP stays on the link
  uint8_t dscp = 0;
};

/// Points the frame at the multicast group: the peer-delay group when
/// `peer_delay` (Pdelay messages, or every message under G.8275.1).
void set_multicast_destination(FrameAddresses& a, bool peer_delay);

/// Ethernet + IP + UDP header bytes in front of the message.
size_t frame_header_size(Transport t);
/// Writes a whole frame: headers (IPv4 header checksum; UDP checksums over
/// IPv4 and IPv6) then the message. Returns its length, 0 if `out` is too small.
size_t build_frame(const FrameAddresses& a, bool event, std::span<const uint8_t> msg, std::span<uint8_t> out);

/// Where a PTP message sits inside a frame (after up to two VLAN tags).
struct PtpLocation {
  Transport transport = Transport::kL2;
  uint16_t offset = 0;  // of the PTP header
  uint16_t length = 0;  // bytes up to the end of the L2 payload / UDP datagram
  bool event_port = false;  // UDP destination port 319 (L2: decided by messageType)
  uint16_t udp_offset = 0;  // UDP transports: of the UDP header
};
/// False when the frame carries no PTP (other EtherType, other UDP port,
/// fragments, truncated headers).
bool locate(std::span<const uint8_t> frame, PtpLocation& loc);
/// The same on a frame the caller has parsed already (`view`, `status`
/// from net::parse_packet), so a stage parses each packet once.
bool locate(std::span<const uint8_t> frame, const net::PacketView& view, net::ParseStatus status,
            PtpLocation& loc);

}  // namespace meridian::ptp
