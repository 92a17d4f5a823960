// Internet checksums (RFC 1071) and pseudo-header sums. Pure: no DPDK.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meridian::net {

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

}  // namespace meridian::net
