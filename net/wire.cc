#include "net/wire.h"

#include "net/checksum.h"

namespace meridian::net {

void set_traffic_class(uint8_t* ip, uint8_t version, uint8_t tc) {
  if (version != 4) {
    ip[0] = static_cast<uint8_t>((ip[0] & 0xf0) | tc >> 4);
    ip[1] = static_cast<uint8_t>((ip[1] & 0x0f) | (tc & 0x0f) << 4);
    return;
  }
  // HC' = ~(~HC + ~m + m') over the 16-bit word holding the TOS byte.
  const uint16_t old_word = be16(ip);
  ip[1] = tc;
  const uint16_t new_word = be16(ip);
  const uint32_t sum = static_cast<uint16_t>(~be16(ip + 10)) + static_cast<uint16_t>(~old_word) + uint32_t{new_word};
  put16(ip + 10, checksum_finish(sum));
}

}  // namespace meridian::net
