// ICMP errors Meridian originates for a frame it cannot pass on: path MTU
// signalling (RFC 1191, RFC 4443). Pure: no DPDK.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/wire.h"

namespace meridian::net {

inline constexpr size_t kTooBigMax = kEthHeader + kIpv6Header + 8 + 1232;  // IPv6: fits the 1280 minimum
/// For an untagged frame that cannot cross the next link (a tunnel), writes
/// at `out` (capacity kTooBigMax) the frame that tells its sender: ICMP
/// Fragmentation Needed (type 3 code 4, RFC 1191) for IPv4 with DF, ICMPv6
/// Packet Too Big (RFC 4443) for IPv6, with `mtu` as the usable IP MTU. The
/// reply comes from the packet's destination (its MAC and IP), as an L2
/// gateway (the VXLAN overlay) sends it: that is what PMTU discovery keys
/// on. Returns the length, or 0 when no reply is due (not IP, IPv4 without DF, an ICMP error itself,
/// non-first fragment, multicast source).
size_t build_too_big(uint8_t* out, const uint8_t* frame, size_t len, uint16_t mtu);

}  // namespace meridian::net
