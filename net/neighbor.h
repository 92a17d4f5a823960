// ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861) messages: parsing
// and building whole frames. Pure: no DPDK; unit-tested against scapy-made
// golden frames.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/wire.h"

namespace meridian::net {

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
/// Neighbour solicitation from `src_ip` for `target`, to its solicited-node
/// group; with `probe_mac`, a reachability probe to the neighbour itself
/// (its address and that MAC, RFC 4861 §7.3.3).
size_t build_ns(uint8_t* out, const uint8_t* src_mac, const uint8_t* src_ip, const uint8_t* target,
                const uint8_t* probe_mac = nullptr);
/// Neighbour advertisement for `target` owned by `target_mac`, solicited, override.
size_t build_na(uint8_t* out, const uint8_t* eth_dst, const uint8_t* target_mac, const uint8_t* target,
                const uint8_t* dst_ip, bool solicited);
/// ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
void solicited_node(const uint8_t* target, uint8_t* group_ip, uint8_t* group_mac);

}  // namespace meridian::net
