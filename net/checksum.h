// Internet checksums (RFC 1071) and pseudo-header sums. Pure: no DPDK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace meridian::net {

/// One's-complement sum of `len` bytes added to `sum` (not folded). Odd
/// lengths are padded with a zero byte, so only the last chunk may be odd.
uint32_t checksum_add(const uint8_t* data, size_t len, uint32_t sum);
/// Folds and complements a running sum into the 16-bit checksum field value.
inline uint16_t checksum_finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}
/// IPv4 header checksum over `ihl_bytes` (the field itself taken as zero).
/// Inline: VXLAN encapsulation computes one per packet, and with the
/// constant 20-byte header it unrolls into ten additions.
inline uint16_t ipv4_header_checksum(const uint8_t* ip, size_t ihl_bytes) {
  if (ihl_bytes == 20) {
    uint32_t sum = 0;
    for (size_t i = 0; i < 20; i += 2) {
      if (i != 10) sum += uint32_t{ip[i]} << 8 | ip[i + 1];
    }
    return checksum_finish(sum);
  }
  uint32_t sum = checksum_add(ip, 10, 0);
  sum = checksum_add(ip + 12, ihl_bytes - 12, sum);
  return checksum_finish(sum);
}
/// Whether the IPv4 header's checksum is right (the sum over the whole
/// header, field included, folds to zero). Inline and unrolled for the
/// plain 20-byte header: VXLAN decapsulation checks one per packet.
inline bool ipv4_header_checksum_ok(const uint8_t* ip, size_t ihl_bytes) {
  if (ihl_bytes == 20) {
    uint32_t sum = 0;
    for (size_t i = 0; i < 20; i += 2) sum += uint32_t{ip[i]} << 8 | ip[i + 1];
    return checksum_finish(sum) == 0;
  }
  return checksum_finish(checksum_add(ip, ihl_bytes, 0)) == 0;
}
/// RFC 1624 eqn. 3: the checksum field's new value after the 16-bit-aligned
/// bytes `before` became `after` (same length, even).
uint16_t checksum_replace(uint16_t checksum, std::span<const uint8_t> before, std::span<const uint8_t> after);
/// Running sums of the IPv4 / IPv6 pseudo-header for an upper-layer packet.
uint32_t ipv4_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint16_t upper_len, uint8_t protocol);
uint32_t ipv6_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint32_t upper_len, uint8_t next_header);

}  // namespace meridian::net
