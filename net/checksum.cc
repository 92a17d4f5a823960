#include "net/checksum.h"

#include "net/wire.h"

namespace meridian::net {

uint32_t checksum_add(const uint8_t* data, size_t len, uint32_t sum) {
  uint64_t acc = sum;
  size_t i = 0;
  // Four bytes at a time: the one's-complement sum of 32-bit big-endian words
  // folds to the same 16-bit sum (RFC 1071), in a quarter of the additions.
  for (; i + 3 < len; i += 4) acc += be32(data + i);
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc >> 16) + (acc & 0xffff) + 0;  // keep it a 16-bit-word sum
  for (; i + 1 < len; i += 2) acc += uint32_t{data[i]} << 8 | data[i + 1];
  if (i < len) acc += uint32_t{data[i]} << 8;
  while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

uint32_t ipv4_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint16_t upper_len, uint8_t protocol) {
  uint32_t sum = checksum_add(src, 4, 0);
  sum = checksum_add(dst, 4, sum);
  return sum + upper_len + protocol;
}

uint32_t ipv6_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint32_t upper_len, uint8_t next_header) {
  uint32_t sum = checksum_add(src, 16, 0);
  sum = checksum_add(dst, 16, sum);
  uint64_t acc = uint64_t{sum} + (upper_len >> 16) + (upper_len & 0xffff) + next_header;
  while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

uint16_t checksum_replace(uint16_t checksum, std::span<const uint8_t> before, std::span<const uint8_t> after) {
  uint32_t sum = static_cast<uint16_t>(~checksum);
  for (size_t i = 0; i + 1 < before.size(); i += 2) {
    sum += static_cast<uint16_t>(~be16(before.data() + i));
    sum += be16(after.data() + i);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace meridian::net
