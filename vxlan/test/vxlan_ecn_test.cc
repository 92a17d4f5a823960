// RFC 6040 ECN handling across the tunnel: the outer header copies the
// inner ECN field on encap; on decap an outer CE marks an ECN-capable inner
// packet CE (with a correct IPv4 checksum) and refuses a not-ECT one.
#include <gtest/gtest.h>

#include <vector>

#include "net/icmp.h"
#include "vxlan/wire.h"

namespace meridian::vxlan {
namespace {

std::vector<uint8_t> ipv4_frame(uint8_t tos) {
  std::vector<uint8_t> f(14 + 20 + 8, 0);
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[1] = tos;
  put16(ip + 2, 28);
  ip[8] = 64;
  ip[9] = kProtoUdp;
  const uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  put16(ip + 10, ipv4_header_checksum(ip, 20));
  return f;
}

TEST(VxlanEcn, EncapCopiesInnerEcnIntoOuterHeader) {
  OuterTemplate t;
  const uint8_t mac[6] = {2, 0, 0, 0, 0, 1}, a[16] = {10, 1, 0, 1}, b[16] = {10, 1, 0, 2};
  build_outer_template(t, {mac, mac, a, b, false, 4789, 64});
  for (uint8_t ecn = 0; ecn < 4; ++ecn) {
    auto inner = ipv4_frame(static_cast<uint8_t>(46 << 2 | ecn));
    EXPECT_EQ(inner_ecn(inner.data(), inner.size()), ecn);
    uint8_t out[kOuterV6];  // room for either template (the writer is inline)
    write_outer(out, t, 100, 50000, inner_dscp(inner.data(), inner.size()), 42, inner_ecn(inner.data(), inner.size()));
    EXPECT_EQ(outer_ecn(out + 14, false), ecn);
    EXPECT_EQ(out[15] >> 2, 46);
    EXPECT_EQ(checksum_finish(checksum_add(out + 14, 20, 0)), 0) << "outer header checksum covers the ECN bits";
  }
  OuterTemplate t6;
  const uint8_t a6[16] = {0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  build_outer_template(t6, {mac, mac, a6, a6, true, 4789, 64});
  uint8_t out6[kOuterV6];
  write_outer(out6, t6, 100, 50000, 46, 42, 2);
  EXPECT_EQ(outer_ecn(out6 + 14, true), 2);
  EXPECT_EQ(out6[14] >> 4, 6) << "version nibble intact";
}

TEST(VxlanEcn, DecapPropagatesCeOnlyToEcnCapableInnerPackets) {
  for (uint8_t inner_ecn_value : {1, 2, 3}) {
    auto f = ipv4_frame(static_cast<uint8_t>(10 << 2 | inner_ecn_value));
    ASSERT_TRUE(ecn_decapsulate(3, f.data(), f.size()));
    EXPECT_EQ(f[15] & 3, 3);
    EXPECT_EQ(f[15] >> 2, 10) << "DSCP untouched";
    EXPECT_EQ(checksum_finish(checksum_add(f.data() + 14, 20, 0)), 0) << "IPv4 checksum updated";
  }
  auto not_ect = ipv4_frame(0);
  EXPECT_FALSE(ecn_decapsulate(3, not_ect.data(), not_ect.size()));
  for (uint8_t outer : {0, 1, 2}) {
    auto f = ipv4_frame(1);
    const auto before = f;
    EXPECT_TRUE(ecn_decapsulate(outer, f.data(), f.size()));
    EXPECT_EQ(f, before) << "only CE is propagated";
  }
  std::vector<uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_TRUE(ecn_decapsulate(3, arp.data(), arp.size())) << "non-IP frames carry no ECN";
}

}  // namespace
}  // namespace meridian::vxlan

namespace meridian::vxlan {
namespace {

TEST(VxlanTooBig, Ipv4FragmentationNeededQuotesTheHeaderAndComesFromTheDestination) {
  auto f = ipv4_frame(0);
  const uint8_t dst_mac[6] = {2, 0xbb, 0, 0, 0, 1}, src_mac[6] = {2, 0xaa, 0, 0, 0, 1};
  std::memcpy(f.data(), dst_mac, 6);
  std::memcpy(f.data() + 6, src_mac, 6);
  uint8_t* ip = f.data() + 14;
  put16(ip + 6, 0x4000);  // DF
  put16(ip + 10, 0);
  put16(ip + 10, ipv4_header_checksum(ip, 20));
  uint8_t out[net::kTooBigMax];
  const size_t n = net::build_too_big(out, f.data(), f.size(), 1450);
  ASSERT_EQ(n, 14u + 20 + 8 + 28);
  EXPECT_EQ(std::memcmp(out, src_mac, 6), 0);
  EXPECT_EQ(std::memcmp(out + 6, dst_mac, 6), 0);
  const uint8_t* oip = out + 14;
  EXPECT_EQ(checksum_finish(checksum_add(oip, 20, 0)), 0);
  EXPECT_EQ(std::memcmp(oip + 12, ip + 16, 4), 0) << "from the original destination";
  EXPECT_EQ(std::memcmp(oip + 16, ip + 12, 4), 0) << "to the original source";
  const uint8_t* icmp = oip + 20;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(be16(icmp + 6), 1450);
  EXPECT_EQ(checksum_finish(checksum_add(icmp, 36, 0)), 0);
  EXPECT_EQ(std::memcmp(icmp + 8, ip, 28), 0) << "quotes the IP header and 8 bytes";

  put16(ip + 6, 0);  // no DF: the sender allows fragmentation, which we never do: no reply
  EXPECT_EQ(net::build_too_big(out, f.data(), f.size(), 1450), 0u);
  std::vector<uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(net::build_too_big(out, arp.data(), arp.size(), 1450), 0u);
}

TEST(VxlanTooBig, Ipv6PacketTooBigFitsTheMinimumMtuAndNeverAnswersAnError) {
  std::vector<uint8_t> f(14 + 40 + 1400, 0x5a);
  f[12] = 0x86;
  f[13] = 0xdd;
  uint8_t* ip = f.data() + 14;
  std::memset(ip, 0, 40);
  ip[0] = 0x60;
  put16(ip + 4, 1400);
  ip[6] = kProtoUdp;
  ip[7] = 64;
  ip[8] = 0xfd;
  ip[23] = 1;
  ip[24] = 0xfd;
  ip[39] = 2;
  uint8_t out[net::kTooBigMax];
  const size_t n = net::build_too_big(out, f.data(), f.size(), 1430);
  ASSERT_EQ(n, net::kTooBigMax);
  EXPECT_LE(n - 14, 1280u) << "an ICMPv6 error fits the IPv6 minimum MTU";
  const uint8_t* oip = out + 14;
  const uint8_t* icmp = oip + 40;
  EXPECT_EQ(icmp[0], 2);
  EXPECT_EQ(be16(icmp + 6), 1430);
  const uint16_t plen = be16(oip + 4);
  EXPECT_EQ(checksum_finish(checksum_add(icmp, plen, ipv6_pseudo_sum(oip + 8, oip + 24, plen, kProtoIcmpv6))), 0);
  ip[6] = kProtoIcmpv6;
  ip[40] = 1;  // destination unreachable: an error, never answered
  EXPECT_EQ(net::build_too_big(out, f.data(), f.size(), 1430), 0u);
}

}  // namespace
}  // namespace meridian::vxlan
