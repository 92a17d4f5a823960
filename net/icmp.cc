#include "net/icmp.h"

#include <algorithm>
#include <cstring>

#include "net/checksum.h"

namespace meridian::net {

size_t build_too_big(uint8_t* out, const uint8_t* f, size_t len, uint16_t mtu) {
  if (len < kEthHeader || (f[6] & 1)) return 0;
  const uint16_t type = be16(f + 12);
  const uint8_t* ip = f + kEthHeader;
  const size_t l3_len = len - kEthHeader;
  std::memcpy(out, f + 6, 6);  // back to the sender...
  std::memcpy(out + 6, f, 6);  // ...from the destination it was sent to
  uint8_t* oip = out + kEthHeader;
  if (type == kEtherIpv4) {
    if (l3_len < kIpv4Header || (ip[0] >> 4) != 4) return 0;
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    if (ihl < kIpv4Header || l3_len < ihl + 8) return 0;
    if (!(be16(ip + 6) & 0x4000) || (be16(ip + 6) & 0x1fff)) return 0;  // no DF, or not the first fragment
    if (ip[9] == 1 && ip[ihl] != 0 && ip[ihl] != 8) return 0;          // never answer an ICMP error
    if ((ip[12] & 0xf0) == 0xe0) return 0;
    const size_t quoted = ihl + 8;  // RFC 792: the header and 64 bits of data
    put16(out + 12, kEtherIpv4);
    std::memset(oip, 0, kIpv4Header + 8);
    oip[0] = 0x45;
    put16(oip + 2, static_cast<uint16_t>(kIpv4Header + 8 + quoted));
    oip[8] = 64;
    oip[9] = 1;
    std::memcpy(oip + 12, ip + 16, 4);
    std::memcpy(oip + 16, ip + 12, 4);
    put16(oip + 10, ipv4_header_checksum(oip, kIpv4Header));
    uint8_t* icmp = oip + kIpv4Header;
    icmp[0] = 3;
    icmp[1] = 4;
    put16(icmp + 6, mtu);
    std::memcpy(icmp + 8, ip, quoted);
    put16(icmp + 2, checksum_finish(checksum_add(icmp, 8 + quoted, 0)));
    return kEthHeader + kIpv4Header + 8 + quoted;
  }
  if (type == kEtherIpv6) {
    if (l3_len < kIpv6Header || (ip[0] >> 4) != 6 || ip[8] == 0xff) return 0;
    if (ip[6] == kProtoIcmpv6 && l3_len > kIpv6Header && ip[kIpv6Header] < 128) return 0;  // an ICMPv6 error
    const size_t quoted = std::min(l3_len, kTooBigMax - kEthHeader - kIpv6Header - 8);
    put16(out + 12, kEtherIpv6);
    std::memset(oip, 0, kIpv6Header + 8);
    oip[0] = 0x60;
    put16(oip + 4, static_cast<uint16_t>(8 + quoted));
    oip[6] = kProtoIcmpv6;
    oip[7] = 64;
    std::memcpy(oip + 8, ip + 24, 16);
    std::memcpy(oip + 24, ip + 8, 16);
    uint8_t* icmp = oip + kIpv6Header;
    icmp[0] = 2;
    put16(icmp + 6, mtu);
    std::memcpy(icmp + 8, ip, quoted);
    const uint32_t sum = ipv6_pseudo_sum(oip + 8, oip + 24, static_cast<uint32_t>(8 + quoted), kProtoIcmpv6);
    put16(icmp + 2, checksum_finish(checksum_add(icmp, 8 + quoted, sum)));
    return kEthHeader + kIpv6Header + 8 + quoted;
  }
  return 0;
}

}  // namespace meridian::net
