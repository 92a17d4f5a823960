// VXLAN / ARP / ND wire codec against scapy-made golden packets
// (test/golden/gen_vxlan_golden.py), plus every truncation and the
// corruptions the underlay classifier and ND parser must reject.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "test/golden/vxlan_golden.h"
#include "vxlan/wire.h"

using namespace meridian::vxlan;
namespace g = meridian::vxlan::golden;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes bytes(const uint8_t* p, size_t n) { return Bytes(p, p + n); }
template <size_t N>
Bytes bytes(const uint8_t (&a)[N]) {
  return Bytes(a, a + N);
}

constexpr uint8_t kLocalV4[4] = {10, 1, 0, 1};
constexpr uint8_t kRemoteV4[4] = {10, 1, 0, 2};
constexpr uint8_t kLocalV6[16] = {0xfd, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};   // fd01::1
constexpr uint8_t kRemoteV6[16] = {0xfd, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};  // fd01::2
constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};  // ff02::1
constexpr uint8_t kAllNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};
constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr uint8_t kZeroMac[6] = {};

OuterTemplate make_template(bool ipv6) {
  OuterTemplate t;
  OuterParams p{.dst_mac = g::kRemoteMac,
                .src_mac = g::kLocalMac,
                .src_ip = ipv6 ? kLocalV6 : kLocalV4,
                .dst_ip = ipv6 ? kRemoteV6 : kRemoteV4,
                .ipv6 = ipv6};
  build_outer_template(t, p);
  return t;
}

/// Encapsulates `inner` as the data path does: outer headers from the
/// template, then (IPv6) the UDP checksum over pseudo-header + UDP + payload.
Bytes encapsulate(bool ipv6, uint8_t dscp, const Bytes& inner, uint32_t vni = g::kVni,
                  uint16_t sport = g::kSourcePort) {
  const OuterTemplate t = make_template(ipv6);
  Bytes out(t.length + inner.size(), 0xcc);  // dirty buffer: every outer byte must be written
  write_outer(out.data(), t, vni, sport, dscp, static_cast<uint16_t>(inner.size()));
  std::memcpy(out.data() + t.length, inner.data(), inner.size());
  if (ipv6) {
    uint8_t* ip = out.data() + kEthHeader;
    uint8_t* udp = out.data() + outer_udp_offset(true);
    EXPECT_EQ(be16(udp + 6), 0) << "write_outer leaves the IPv6 UDP checksum 0";
    const uint32_t udp_len = static_cast<uint32_t>(kUdpHeader + kVxlanHeader + inner.size());
    uint32_t sum = ipv6_pseudo_sum(ip + 8, ip + 24, udp_len, kProtoUdp);
    sum = checksum_add(udp, udp_len, sum);
    uint16_t c = checksum_finish(sum);
    if (c == 0) c = 0xffff;  // RFC 8200 8.1: a computed 0 is sent as ffff
    put16(udp + 6, c);
  }
  return out;
}

void fix_ipv4_checksum(Bytes& f, size_t l3 = kEthHeader) {
  put16(&f[l3 + 10], ipv4_header_checksum(&f[l3], size_t{f[l3] & 0x0fu} * 4));
}

/// Recomputes the ICMPv6 checksum of an IPv6 packet at `ip6` (payload length from the header).
void fix_icmp6_checksum(uint8_t* ip6) {
  const uint16_t payload = be16(ip6 + 4);
  uint8_t* icmp = ip6 + kIpv6Header;
  put16(icmp + 2, 0);
  put16(icmp + 2, checksum_finish(checksum_add(icmp, payload, ipv6_pseudo_sum(ip6 + 8, ip6 + 24, payload, kProtoIcmpv6))));
}

UnderlayStatus classify(const Bytes& f, uint16_t port = kDefaultVxlanPort) {
  OuterView v;
  return classify_underlay(f.data(), f.size(), port, v);
}

bool same6(const uint8_t* a, const uint8_t* b) { return a && b && std::memcmp(a, b, 6) == 0; }
bool same4(const uint8_t* a, const uint8_t* b) { return a && b && std::memcmp(a, b, 4) == 0; }
bool same16(const uint8_t* a, const uint8_t* b) { return a && b && std::memcmp(a, b, 16) == 0; }

}  // namespace

// ---- checksums ------------------------------------------------------------

TEST(VxlanChecksum, Rfc1071Example) {
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  const uint32_t sum = checksum_add(data, sizeof data, 0);
  EXPECT_EQ(checksum_finish(sum), static_cast<uint16_t>(~0xddf2 & 0xffff));
  // chunked: the same sum in two even chunks
  EXPECT_EQ(checksum_finish(checksum_add(data + 4, 4, checksum_add(data, 4, 0))), checksum_finish(sum));
}

TEST(VxlanChecksum, OddLengthPadsWithZero) {
  const uint8_t odd[] = {0x12, 0x34, 0x56};
  const uint8_t even[] = {0x12, 0x34, 0x56, 0x00};
  EXPECT_EQ(checksum_finish(checksum_add(odd, 3, 0)), checksum_finish(checksum_add(even, 4, 0)));
  EXPECT_EQ(checksum_finish(0), 0xffff);
  EXPECT_EQ(checksum_finish(0xffff), 0);
  EXPECT_EQ(checksum_finish(0x1fffe), 0);  // folds the carry
}

TEST(VxlanChecksum, Ipv4HeaderMatchesGolden) {
  const uint8_t* ip = g::kVxlanV4 + kEthHeader;
  EXPECT_EQ(ipv4_header_checksum(ip, kIpv4Header), be16(ip + 10));
  EXPECT_EQ(checksum_finish(checksum_add(ip, kIpv4Header, 0)), 0);
  const uint8_t* inner_ip = g::kInnerV4 + kEthHeader;
  EXPECT_EQ(ipv4_header_checksum(inner_ip, kIpv4Header), be16(inner_ip + 10));
}

TEST(VxlanChecksum, Ipv6PseudoHeaderVerifiesGoldenUdp) {
  for (const auto& [f, n] : {std::pair{g::kVxlanV6, g::kVxlanV6Len}, std::pair{g::kVxlanV6Dscp46, g::kVxlanV6Dscp46Len}}) {
    const uint8_t* ip = f + kEthHeader;
    const uint16_t plen = be16(ip + 4);
    ASSERT_EQ(plen, n - kEthHeader - kIpv6Header);
    const uint32_t sum = ipv6_pseudo_sum(ip + 8, ip + 24, plen, kProtoUdp);
    EXPECT_EQ(checksum_finish(checksum_add(ip + kIpv6Header, plen, sum)), 0);
  }
}

// ---- encapsulation --------------------------------------------------------

TEST(VxlanEncap, Ipv4HeaderChecksumFromTheTemplateSumMatchesARecomputation) {
  // The outer IPv4 checksum is the template's constant sum plus the packet's
  // TOS and length: check it against a pass over the written header for
  // addresses, TTLs, TOS values and lengths that carry in every way.
  const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
  const uint8_t addrs[][4] = {{10, 1, 0, 1}, {255, 255, 255, 254}, {0, 0, 0, 0}, {192, 168, 255, 255}};
  for (const auto& src : addrs) {
    for (const auto& dst : addrs) {
      for (uint8_t ttl : {1, 64, 255}) {
        OuterTemplate t;
        build_outer_template(t, {mac, mac, src, dst, false, 4789, ttl});
        for (uint8_t dscp : {0, 46, 63}) {
          for (uint8_t ecn : {0, 3}) {
            for (uint16_t inner : {14, 1374, 8950, 65000}) {
              uint8_t out[kOuterV6];
              write_outer(out, t, 100, 50000, dscp, inner, ecn);
              const uint8_t* ip = out + kEthHeader;
              ASSERT_EQ(be16(ip + 10), ipv4_header_checksum(ip, kIpv4Header))
                  << "ttl " << int{ttl} << " dscp " << int{dscp} << " ecn " << int{ecn} << " inner " << inner;
            }
          }
        }
      }
    }
  }
}

TEST(VxlanEncap, TemplateLengths) {
  EXPECT_EQ(make_template(false).length, kOuterV4);
  EXPECT_EQ(make_template(true).length, kOuterV6);
  EXPECT_FALSE(make_template(false).ipv6);
  EXPECT_TRUE(make_template(true).ipv6);
  EXPECT_EQ(outer_udp_offset(false), 34u);
  EXPECT_EQ(outer_udp_offset(true), 54u);
}

TEST(VxlanEncap, Ipv4MatchesGolden) {
  const Bytes inner = bytes(g::kInnerV4);
  EXPECT_EQ(encapsulate(false, 0, inner), bytes(g::kVxlanV4));
  EXPECT_EQ(encapsulate(false, 46, inner), bytes(g::kVxlanV4Dscp46));
}

TEST(VxlanEncap, Ipv6MatchesGolden) {
  const Bytes inner = bytes(g::kInnerV4);
  EXPECT_EQ(encapsulate(true, 0, inner), bytes(g::kVxlanV6));
  EXPECT_EQ(encapsulate(true, 46, inner), bytes(g::kVxlanV6Dscp46));
}

TEST(VxlanEncap, PerPacketFields) {
  const Bytes inner = bytes(g::kInnerV6);
  for (bool v6 : {false, true}) {
    const Bytes f = encapsulate(v6, 63, inner, 0xabcdef, 65535);
    OuterView v;
    ASSERT_EQ(classify_underlay(f.data(), f.size(), kDefaultVxlanPort, v), UnderlayStatus::kVxlan) << v6;
    EXPECT_EQ(v.vni, 0xabcdefu);
    EXPECT_EQ(v.inner_offset, v6 ? kOuterV6 : kOuterV4);
    const uint8_t* udp = f.data() + outer_udp_offset(v6);
    EXPECT_EQ(be16(udp), 65535);
    EXPECT_EQ(be16(udp + 4), kUdpHeader + kVxlanHeader + inner.size());
    EXPECT_EQ(udp[kUdpHeader + 7], 0) << "VXLAN reserved byte after the VNI";
    const uint8_t* ip = f.data() + kEthHeader;
    const uint8_t tc = v6 ? static_cast<uint8_t>((ip[0] & 0x0f) << 4 | ip[1] >> 4) : ip[1];
    EXPECT_EQ(tc, 63 << 2) << "DSCP 63, ECN 0";
    EXPECT_EQ(ip[0] >> 4, v6 ? 6 : 4);
    if (v6) {
      EXPECT_EQ(ip[1] & 0x0f, 0) << "flow label";
    }
  }
}

// ---- underlay classification ------------------------------------------------

TEST(VxlanClassify, GoldenIpv4) {
  for (const auto& [f, n] : {std::pair{g::kVxlanV4, g::kVxlanV4Len}, std::pair{g::kVxlanV4Dscp46, g::kVxlanV4Dscp46Len}}) {
    OuterView v;
    ASSERT_EQ(classify_underlay(f, n, kDefaultVxlanPort, v), UnderlayStatus::kVxlan);
    EXPECT_FALSE(v.ipv6);
    EXPECT_EQ(v.vni, g::kVni);
    EXPECT_EQ(v.l3_offset, kEthHeader);
    EXPECT_EQ(v.inner_offset, kOuterV4);
    EXPECT_EQ(v.src_ip, f + 26);
    EXPECT_EQ(v.dst_ip, f + 30);
    EXPECT_TRUE(same4(v.src_ip, kLocalV4));
    EXPECT_TRUE(same4(v.dst_ip, kRemoteV4));
    ASSERT_EQ(n - v.inner_offset, g::kInnerV4Len);
    EXPECT_EQ(std::memcmp(f + v.inner_offset, g::kInnerV4, g::kInnerV4Len), 0);
  }
}

TEST(VxlanClassify, GoldenIpv6) {
  for (const auto& [f, n] : {std::pair{g::kVxlanV6, g::kVxlanV6Len}, std::pair{g::kVxlanV6Dscp46, g::kVxlanV6Dscp46Len}}) {
    OuterView v;
    ASSERT_EQ(classify_underlay(f, n, kDefaultVxlanPort, v), UnderlayStatus::kVxlan);
    EXPECT_TRUE(v.ipv6);
    EXPECT_EQ(v.vni, g::kVni);
    EXPECT_EQ(v.inner_offset, kOuterV6);
    EXPECT_EQ(v.src_ip, f + 22);
    EXPECT_EQ(v.dst_ip, f + 38);
    EXPECT_TRUE(same16(v.src_ip, kLocalV6));
    EXPECT_TRUE(same16(v.dst_ip, kRemoteV6));
    EXPECT_EQ(std::memcmp(f + v.inner_offset, g::kInnerV4, g::kInnerV4Len), 0);
  }
}

TEST(VxlanClassify, EthernetPaddingIsIgnored) {
  for (Bytes f : {bytes(g::kVxlanV4), bytes(g::kVxlanV6)}) {
    f.resize(f.size() + 9, 0);
    EXPECT_EQ(classify(f), UnderlayStatus::kVxlan);
  }
}

TEST(VxlanClassify, EveryTruncationIsTruncated) {
  for (const Bytes& f : {bytes(g::kVxlanV4), bytes(g::kVxlanV6), bytes(g::kNs), bytes(g::kNa)}) {
    for (size_t n = 0; n < f.size(); ++n) {
      OuterView v;
      EXPECT_EQ(classify_underlay(f.data(), n, kDefaultVxlanPort, v), UnderlayStatus::kTruncated) << n;
    }
  }
  // ARP is recognised from the EtherType alone; parse_arp checks the body length.
  for (size_t n = 0; n < kEthHeader; ++n) {
    OuterView v;
    EXPECT_EQ(classify_underlay(g::kArpRequest, n, kDefaultVxlanPort, v), UnderlayStatus::kTruncated) << n;
  }
}

TEST(VxlanClassify, LengthFieldsBeyondTheFrameAreTruncated) {
  Bytes f = bytes(g::kVxlanV4);
  put16(&f[kEthHeader + 2], static_cast<uint16_t>(f.size() - kEthHeader + 1));  // IPv4 total > frame
  fix_ipv4_checksum(f);
  EXPECT_EQ(classify(f), UnderlayStatus::kTruncated);
  put16(&f[kEthHeader + 2], 19);  // total < ihl
  fix_ipv4_checksum(f);
  EXPECT_EQ(classify(f), UnderlayStatus::kTruncated);

  f = bytes(g::kVxlanV4);
  put16(&f[34 + 4], static_cast<uint16_t>(f.size() - 34 + 1));  // UDP length > IP payload
  EXPECT_EQ(classify(f), UnderlayStatus::kTruncated);
  put16(&f[34 + 4], kUdpHeader + kVxlanHeader + kEthHeader - 1);  // no room for an inner Ethernet header
  EXPECT_EQ(classify(f), UnderlayStatus::kTruncated);
  put16(&f[34 + 4], kUdpHeader + kVxlanHeader + kEthHeader);  // exactly room: accepted
  EXPECT_EQ(classify(f), UnderlayStatus::kVxlan);

  f = bytes(g::kVxlanV6);
  put16(&f[kEthHeader + 4], static_cast<uint16_t>(f.size() - kEthHeader - kIpv6Header + 1));
  EXPECT_EQ(classify(f), UnderlayStatus::kTruncated);
  put16(&f[kEthHeader + 4], 7);  // payload shorter than a UDP header
  EXPECT_EQ(classify(f), UnderlayStatus::kTruncated);
}

TEST(VxlanClassify, BadIpv4Header) {
  Bytes f = bytes(g::kVxlanV4);
  f[kEthHeader + 10] ^= 0x01;  // checksum
  EXPECT_EQ(classify(f), UnderlayStatus::kBadIpHeader);
  f = bytes(g::kVxlanV4);
  f[kEthHeader + 8] = 1;  // TTL changed, checksum not updated
  EXPECT_EQ(classify(f), UnderlayStatus::kBadIpHeader);
  f = bytes(g::kVxlanV4);
  f[kEthHeader] = 0x44;  // IHL 16 bytes
  fix_ipv4_checksum(f);
  EXPECT_EQ(classify(f), UnderlayStatus::kBadIpHeader);
  f = bytes(g::kVxlanV4);
  f[kEthHeader] = 0x65;  // version 6 under EtherType IPv4
  EXPECT_EQ(classify(f), UnderlayStatus::kBadIpHeader);
  f = bytes(g::kVxlanV6);
  f[kEthHeader] = 0x40;  // version 4 under EtherType IPv6
  EXPECT_EQ(classify(f), UnderlayStatus::kBadIpHeader);
}

TEST(VxlanClassify, Ipv4OptionsAreSkipped) {
  // Insert 4 bytes of options (NOP x4) after the 20-byte header.
  Bytes f = bytes(g::kVxlanV4);
  f.insert(f.begin() + kEthHeader + kIpv4Header, 4, 0x01);
  f[kEthHeader] = 0x46;
  put16(&f[kEthHeader + 2], static_cast<uint16_t>(be16(&f[kEthHeader + 2]) + 4));
  fix_ipv4_checksum(f);
  OuterView v;
  ASSERT_EQ(classify_underlay(f.data(), f.size(), kDefaultVxlanPort, v), UnderlayStatus::kVxlan);
  EXPECT_EQ(v.inner_offset, kOuterV4 + 4);
  EXPECT_EQ(v.vni, g::kVni);
}

TEST(VxlanClassify, Fragments) {
  for (uint16_t frag : {0x2000 /* MF */, 0x0001 /* offset 8 */, 0x4001 /* DF + offset */, 0x3fff}) {
    Bytes f = bytes(g::kVxlanV4);
    put16(&f[kEthHeader + 6], frag);
    fix_ipv4_checksum(f);
    EXPECT_EQ(classify(f), UnderlayStatus::kFragment) << frag;
  }
  Bytes f = bytes(g::kVxlanV6);
  f[kEthHeader + 6] = 44;  // Fragment header
  EXPECT_EQ(classify(f), UnderlayStatus::kFragment);
}

TEST(VxlanClassify, NotVxlan) {
  EXPECT_EQ(classify(bytes(g::kVxlanV4), 4790), UnderlayStatus::kNotVxlan);
  EXPECT_EQ(classify(bytes(g::kVxlanV6), 8472), UnderlayStatus::kNotVxlan);
  Bytes f = bytes(g::kVxlanV4);
  put16(&f[34 + 2], 4790);  // destination port (source port 4789 must not matter)
  put16(&f[34], kDefaultVxlanPort);
  EXPECT_EQ(classify(f), UnderlayStatus::kNotVxlan);
  EXPECT_EQ(classify(f, 4790), UnderlayStatus::kVxlan);

  f = bytes(g::kVxlanV4);
  f[kEthHeader + 9] = kProtoTcp;
  fix_ipv4_checksum(f);
  EXPECT_EQ(classify(f), UnderlayStatus::kNotVxlan);
  f = bytes(g::kVxlanV6);
  f[kEthHeader + 6] = kProtoTcp;
  EXPECT_EQ(classify(f), UnderlayStatus::kNotVxlan);
  f = bytes(g::kVxlanV6);
  f[kEthHeader + 6] = 0;  // hop-by-hop options: extension headers are not walked
  EXPECT_EQ(classify(f), UnderlayStatus::kNotVxlan);

  f = bytes(g::kNs);
  f[kEthHeader + kIpv6Header] = 128;  // ICMPv6 echo request
  EXPECT_EQ(classify(f), UnderlayStatus::kNotVxlan);
}

TEST(VxlanClassify, NoIFlag) {
  for (Bytes f : {bytes(g::kVxlanV4), bytes(g::kVxlanV6)}) {
    const size_t vx = outer_udp_offset(f[12] == 0x86) + kUdpHeader;
    const bool v6 = f[12] == 0x86;
    f[vx] = 0x00;  // (a missing I flag is reported before the then-stale IPv6 checksum)
    EXPECT_EQ(classify(f), UnderlayStatus::kNoIFlag);
    f[vx] = 0xf7;  // every flag but I
    EXPECT_EQ(classify(f), UnderlayStatus::kNoIFlag);
    f[vx] = 0xff;  // reserved flags set too: still VXLAN (RFC 7348: ignored on receipt)
    if (v6) {
      EXPECT_EQ(classify(f), UnderlayStatus::kBadChecksum) << "the IPv6 UDP checksum is verified";
      finish_udp6_checksum(f.data());
    }
    EXPECT_EQ(classify(f), UnderlayStatus::kVxlan);
  }
}

TEST(VxlanClassify, Ipv6UdpChecksumMustBePresentAndRight) {
  Bytes f = bytes(g::kVxlanV6);
  ASSERT_EQ(classify(f), UnderlayStatus::kVxlan);
  const size_t udp = outer_udp_offset(true);
  Bytes zero = f;
  zero[udp + 6] = zero[udp + 7] = 0;
  EXPECT_EQ(classify(zero), UnderlayStatus::kBadChecksum) << "zero checksum over IPv6 (RFC 8200 8.1)";
  Bytes flipped = f;
  flipped.back() ^= 0x01;  // one payload bit
  EXPECT_EQ(classify(flipped), UnderlayStatus::kBadChecksum);
  finish_udp6_checksum(flipped.data());
  EXPECT_EQ(classify(flipped), UnderlayStatus::kVxlan);
  Bytes v4 = bytes(g::kVxlanV4);
  v4.back() ^= 0x01;
  EXPECT_EQ(classify(v4), UnderlayStatus::kVxlan) << "IPv4 VXLAN sends UDP checksum 0: not verified";
}

TEST(VxlanClassify, ArpNdAndOthers) {
  EXPECT_EQ(classify(bytes(g::kArpRequest)), UnderlayStatus::kArp);
  EXPECT_EQ(classify(bytes(g::kArpReply)), UnderlayStatus::kArp);
  for (const Bytes& f : {bytes(g::kNs), bytes(g::kNa), bytes(g::kNaUnsolicited)}) {
    OuterView v;
    ASSERT_EQ(classify_underlay(f.data(), f.size(), kDefaultVxlanPort, v), UnderlayStatus::kNeighborDiscovery);
    EXPECT_TRUE(v.ipv6);
    EXPECT_EQ(v.l3_offset, kEthHeader);
    EXPECT_EQ(v.src_ip, f.data() + 22);
  }
  Bytes f = bytes(g::kVxlanV4);
  put16(&f[12], kEtherVlan);  // tagged underlay is not handled here
  EXPECT_EQ(classify(f), UnderlayStatus::kOtherEtherType);
  put16(&f[12], 0x88cc);  // LLDP
  EXPECT_EQ(classify(f), UnderlayStatus::kOtherEtherType);
}

TEST(VxlanClassify, StatusNames) {
  EXPECT_STREQ(underlay_status_name(UnderlayStatus::kVxlan), "vxlan");
  EXPECT_STREQ(underlay_status_name(UnderlayStatus::kNeighborDiscovery), "nd");
  EXPECT_STREQ(underlay_status_name(UnderlayStatus::kOtherEtherType), "other_ethertype");
  EXPECT_STREQ(underlay_status_name(UnderlayStatus::kNoIFlag), "no_i_flag");
}

// ---- ARP ----------------------------------------------------------------------

TEST(VxlanArp, ParseGolden) {
  ArpView v;
  ASSERT_TRUE(parse_arp(g::kArpRequest + kEthHeader, g::kArpRequestLen - kEthHeader, v));
  EXPECT_EQ(v.op, kArpRequest);
  EXPECT_TRUE(same6(v.sender_mac, g::kLocalMac));
  EXPECT_TRUE(same4(v.sender_ip, kLocalV4));
  EXPECT_TRUE(same6(v.target_mac, kZeroMac));
  EXPECT_TRUE(same4(v.target_ip, kRemoteV4));
  ASSERT_TRUE(parse_arp(g::kArpReply + kEthHeader, g::kArpReplyLen - kEthHeader, v));
  EXPECT_EQ(v.op, kArpReply);
  EXPECT_TRUE(same6(v.sender_mac, g::kRemoteMac));
  EXPECT_TRUE(same4(v.sender_ip, kRemoteV4));
  EXPECT_TRUE(same6(v.target_mac, g::kLocalMac));
  EXPECT_TRUE(same4(v.target_ip, kLocalV4));
}

TEST(VxlanArp, ParseRejects) {
  const uint8_t* body = g::kArpRequest + kEthHeader;
  ArpView v;
  for (size_t n = 0; n < 28; ++n) EXPECT_FALSE(parse_arp(body, n, v)) << n;
  const std::pair<size_t, uint8_t> corruptions[] = {
      {1, 6},     // htype 6 (IEEE 802)
      {2, 0x86},  // ptype 0x86dd-ish
      {4, 8},     // hlen
      {5, 16},    // plen
      {7, 3},     // op 3 (RARP)
      {7, 0},     // op 0
  };
  for (const auto& [at, value] : corruptions) {
    Bytes b = bytes(body, 28);
    b[at] = value;
    EXPECT_FALSE(parse_arp(b.data(), b.size(), v)) << at;
  }
}

TEST(VxlanArp, BuildMatchesGolden) {
  Bytes out(kArpFrame, 0xcc);
  ASSERT_EQ(build_arp(out.data(), kArpRequest, kBroadcast, g::kLocalMac, kLocalV4, kZeroMac, kRemoteV4), kArpFrame);
  EXPECT_EQ(out, bytes(g::kArpRequest));
  std::fill(out.begin(), out.end(), 0xcc);
  ASSERT_EQ(build_arp(out.data(), kArpReply, g::kLocalMac, g::kRemoteMac, kRemoteV4, g::kLocalMac, kLocalV4), kArpFrame);
  EXPECT_EQ(out, bytes(g::kArpReply));
}

TEST(VxlanArp, RoundTrip) {
  const uint8_t mac_a[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55}, mac_b[6] = {0x02, 0x66, 0x77, 0x88, 0x99, 0xaa};
  const uint8_t ip_a[4] = {192, 0, 2, 1}, ip_b[4] = {198, 51, 100, 7};
  for (uint16_t op : {kArpRequest, kArpReply}) {
    uint8_t out[kArpFrame];
    build_arp(out, op, mac_b, mac_a, ip_a, mac_b, ip_b);
    EXPECT_TRUE(same6(out, mac_b));
    EXPECT_TRUE(same6(out + 6, mac_a));
    EXPECT_EQ(be16(out + 12), kEtherArp);
    ArpView v;
    ASSERT_TRUE(parse_arp(out + kEthHeader, kArpFrame - kEthHeader, v));
    EXPECT_EQ(v.op, op);
    EXPECT_TRUE(same6(v.sender_mac, mac_a));
    EXPECT_TRUE(same4(v.sender_ip, ip_a));
    EXPECT_TRUE(same6(v.target_mac, mac_b));
    EXPECT_TRUE(same4(v.target_ip, ip_b));
  }
}

TEST(VxlanArp, ReplyInPlaceOverRequest) {
  // The responder turns the received request into the reply in the same
  // buffer, with every argument pointing into that buffer.
  Bytes buf = bytes(g::kArpRequest);
  ArpView req;
  ASSERT_TRUE(parse_arp(buf.data() + kEthHeader, buf.size() - kEthHeader, req));
  const size_t n = build_arp(buf.data(), kArpReply, req.sender_mac, g::kRemoteMac, req.target_ip, req.sender_mac,
                             req.sender_ip);
  ASSERT_EQ(n, kArpFrame);
  EXPECT_EQ(buf, bytes(g::kArpReply));
}

// ---- IPv6 neighbour discovery ----------------------------------------------------

TEST(VxlanNd, ParseGoldenNs) {
  NdView v;
  ASSERT_TRUE(parse_nd(g::kNs + kEthHeader, g::kNsLen - kEthHeader, v));
  EXPECT_EQ(v.type, kNdNeighborSolicit);
  EXPECT_TRUE(same16(v.src_ip, kLocalV6));
  EXPECT_EQ(v.dst_ip, g::kNs + kEthHeader + 24);
  EXPECT_EQ(v.dst_ip[0], 0xff);
  EXPECT_TRUE(same16(v.target, kRemoteV6));
  EXPECT_TRUE(same6(v.link_addr, g::kLocalMac));
  EXPECT_FALSE(v.solicited);
  EXPECT_FALSE(v.override_flag);
}

TEST(VxlanNd, ParseGoldenNa) {
  NdView v;
  ASSERT_TRUE(parse_nd(g::kNa + kEthHeader, g::kNaLen - kEthHeader, v));
  EXPECT_EQ(v.type, kNdNeighborAdvert);
  EXPECT_TRUE(same16(v.src_ip, kRemoteV6));
  EXPECT_TRUE(same16(v.dst_ip, kLocalV6));
  EXPECT_TRUE(same16(v.target, kRemoteV6));
  EXPECT_TRUE(same6(v.link_addr, g::kRemoteMac));
  EXPECT_TRUE(v.solicited);
  EXPECT_TRUE(v.override_flag);

  ASSERT_TRUE(parse_nd(g::kNaUnsolicited + kEthHeader, g::kNaUnsolicitedLen - kEthHeader, v));
  EXPECT_FALSE(v.solicited);
  EXPECT_TRUE(v.override_flag);
  EXPECT_TRUE(same16(v.dst_ip, kAllNodes));
}

TEST(VxlanNd, ParseRejectsBadChecksum) {
  for (size_t at : {size_t{42}, size_t{50}, size_t{63}, size_t{71}}) {  // checksum, target, option
    Bytes f = bytes(g::kNa);
    f[kEthHeader + at] ^= 0x10;
    NdView v;
    EXPECT_FALSE(parse_nd(f.data() + kEthHeader, f.size() - kEthHeader, v)) << at;
  }
  Bytes f = bytes(g::kNs);
  f[kEthHeader + 8 + 15] ^= 1;  // source address: covered by the pseudo-header
  NdView v;
  EXPECT_FALSE(parse_nd(f.data() + kEthHeader, f.size() - kEthHeader, v));
}

TEST(VxlanNd, ParseRejectsHopLimitNot255) {
  for (uint8_t hl : {0, 1, 64, 254}) {
    Bytes f = bytes(g::kNs);
    f[kEthHeader + 7] = hl;  // not covered by the checksum
    NdView v;
    EXPECT_FALSE(parse_nd(f.data() + kEthHeader, f.size() - kEthHeader, v)) << int{hl};
  }
}

TEST(VxlanNd, ParseRejectsTruncation) {
  for (const Bytes& f : {bytes(g::kNs), bytes(g::kNa)}) {
    for (size_t n = 0; n < f.size() - kEthHeader; ++n) {
      NdView v;
      EXPECT_FALSE(parse_nd(f.data() + kEthHeader, n, v)) << n;
    }
  }
}

TEST(VxlanNd, ParseRejectsBadOptions) {
  for (uint8_t opt_len : {0, 2, 255}) {  // zero length, runs past the payload
    Bytes f = bytes(g::kNa);
    uint8_t* ip = f.data() + kEthHeader;
    ip[kIpv6Header + 25] = opt_len;
    fix_icmp6_checksum(ip);
    NdView v;
    EXPECT_FALSE(parse_nd(ip, f.size() - kEthHeader, v)) << int{opt_len};
  }
  // Option cut short by the IPv6 payload length (frame still carries it).
  Bytes f = bytes(g::kNs);
  uint8_t* ip = f.data() + kEthHeader;
  put16(ip + 4, 28);
  fix_icmp6_checksum(ip);
  NdView v;
  EXPECT_FALSE(parse_nd(ip, f.size() - kEthHeader, v));
}

TEST(VxlanNd, ParseOptionVariants) {
  // No option at all: valid, no link-layer address.
  Bytes f = bytes(g::kNs);
  uint8_t* ip = f.data() + kEthHeader;
  put16(ip + 4, 24);
  fix_icmp6_checksum(ip);
  NdView v;
  ASSERT_TRUE(parse_nd(ip, 64, v));
  EXPECT_EQ(v.link_addr, nullptr);

  // An unknown option before the wanted one is skipped.
  Bytes g2 = bytes(g::kNa);
  g2.insert(g2.begin() + kEthHeader + kIpv6Header + 24, {14, 1, 0, 0, 0, 0, 0, 0});  // nonce option
  ip = g2.data() + kEthHeader;
  put16(ip + 4, 40);
  fix_icmp6_checksum(ip);
  ASSERT_TRUE(parse_nd(ip, g2.size() - kEthHeader, v));
  EXPECT_TRUE(same6(v.link_addr, g::kRemoteMac));

  // An NS carrying a target (type 2) option only: no source link-layer address.
  f = bytes(g::kNs);
  ip = f.data() + kEthHeader;
  ip[kIpv6Header + 24] = 2;
  fix_icmp6_checksum(ip);
  ASSERT_TRUE(parse_nd(ip, f.size() - kEthHeader, v));
  EXPECT_EQ(v.link_addr, nullptr);
}

TEST(VxlanNd, ParseRejectsOtherMessages) {
  const std::pair<size_t, uint8_t> corruptions[] = {
      {kIpv6Header + 0, kNdRouterSolicit},  // ICMPv6 type
      {kIpv6Header + 1, 1},                 // code
      {kIpv6Header + 8, 0xff},              // multicast target
  };
  for (const auto& [at, value] : corruptions) {
    Bytes f = bytes(g::kNs);
    uint8_t* ip = f.data() + kEthHeader;
    ip[at] = value;
    fix_icmp6_checksum(ip);
    NdView v;
    EXPECT_FALSE(parse_nd(ip, f.size() - kEthHeader, v)) << at;
  }
  Bytes f = bytes(g::kNs);
  f[kEthHeader + 6] = kProtoUdp;
  NdView v;
  EXPECT_FALSE(parse_nd(f.data() + kEthHeader, f.size() - kEthHeader, v));
}

TEST(VxlanNd, SolicitedNode) {
  const uint8_t target[16] = {0xfd, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc};
  const uint8_t want_ip[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0x78, 0x9a, 0xbc};
  const uint8_t want_mac[6] = {0x33, 0x33, 0xff, 0x78, 0x9a, 0xbc};
  uint8_t ip[16], mac[6];
  solicited_node(target, ip, mac);
  EXPECT_TRUE(same16(ip, want_ip));
  EXPECT_TRUE(same6(mac, want_mac));
  // The golden NS goes to the group of fd01::2.
  solicited_node(kRemoteV6, ip, mac);
  EXPECT_TRUE(same16(ip, g::kNs + kEthHeader + 24));
  EXPECT_TRUE(same6(mac, g::kNs));
}

TEST(VxlanNd, BuildMatchesGolden) {
  Bytes out(kNdFrame, 0xcc);
  ASSERT_EQ(build_ns(out.data(), g::kLocalMac, kLocalV6, kRemoteV6), kNdFrame);
  EXPECT_EQ(out, bytes(g::kNs));
  std::fill(out.begin(), out.end(), 0xcc);
  ASSERT_EQ(build_na(out.data(), g::kLocalMac, g::kRemoteMac, kRemoteV6, kLocalV6, true), kNdFrame);
  EXPECT_EQ(out, bytes(g::kNa));
  std::fill(out.begin(), out.end(), 0xcc);
  ASSERT_EQ(build_na(out.data(), kAllNodesMac, g::kRemoteMac, kRemoteV6, kAllNodes, false), kNdFrame);
  EXPECT_EQ(out, bytes(g::kNaUnsolicited));
}

TEST(VxlanNd, NaInPlaceOverNs) {
  // The responder answers an NS in its own buffer, arguments pointing into it.
  Bytes buf = bytes(g::kNs);
  NdView ns;
  ASSERT_TRUE(parse_nd(buf.data() + kEthHeader, buf.size() - kEthHeader, ns));
  build_na(buf.data(), ns.link_addr, g::kRemoteMac, ns.target, ns.src_ip, true);
  EXPECT_EQ(buf, bytes(g::kNa));
}

TEST(VxlanNd, BuiltMessagesParseAndClassify) {
  uint8_t out[kNdFrame];
  build_ns(out, g::kLocalMac, kLocalV6, kRemoteV6);
  OuterView ov;
  EXPECT_EQ(classify_underlay(out, sizeof out, kDefaultVxlanPort, ov), UnderlayStatus::kNeighborDiscovery);
  NdView v;
  ASSERT_TRUE(parse_nd(out + kEthHeader, sizeof out - kEthHeader, v));
  EXPECT_EQ(v.type, kNdNeighborSolicit);
  build_na(out, g::kLocalMac, g::kRemoteMac, kRemoteV6, kLocalV6, false);
  ASSERT_TRUE(parse_nd(out + kEthHeader, sizeof out - kEthHeader, v));
  EXPECT_EQ(v.type, kNdNeighborAdvert);
  EXPECT_FALSE(v.solicited);
  EXPECT_TRUE(v.override_flag);
}

// ---- source port entropy, flow hash, DSCP ---------------------------------------

TEST(VxlanSourcePort, AlwaysWithinRange) {
  std::mt19937 rng(7);
  const std::pair<uint16_t, uint16_t> ranges[] = {{49152, 65535}, {1, 65535}, {0, 65535}, {1000, 1000},
                                                  {4789, 4790},   {0, 0},     {65535, 65535}, {1024, 2047}};
  for (const auto& [lo, hi] : ranges) {
    EXPECT_EQ(source_port(0, lo, hi), lo);
    EXPECT_EQ(source_port(0xffffffffu, lo, hi), hi);
    for (int i = 0; i < 20000; ++i) {
      const uint16_t p = source_port(static_cast<uint32_t>(rng()), lo, hi);
      ASSERT_GE(p, lo);
      ASSERT_LE(p, hi);
    }
  }
  // Both ends of a two-port range are used.
  std::set<uint16_t> seen;
  for (int i = 0; i < 100; ++i) seen.insert(source_port(static_cast<uint32_t>(rng()), 4789, 4790));
  EXPECT_EQ(seen.size(), 2u);
}

TEST(VxlanSourcePort, FlowsSpreadOverDefaultRange) {
  Bytes f = bytes(g::kInnerV4);
  std::set<uint16_t> by_port, by_addr;
  for (uint16_t i = 0; i < 1000; ++i) {
    Bytes a = f;
    put16(&a[34], static_cast<uint16_t>(10000 + i));  // UDP source port
    by_port.insert(source_port(inner_flow_hash(a.data(), a.size()), 49152, 65535));
    Bytes b = f;
    put16(&b[28], i);  // low half of the inner source address
    by_addr.insert(source_port(inner_flow_hash(b.data(), b.size()), 49152, 65535));
  }
  EXPECT_GT(by_port.size(), 500u);
  EXPECT_GT(by_addr.size(), 500u);
}

TEST(VxlanFlowHash, StablePerFlow) {
  Bytes f = bytes(g::kInnerV4);
  const uint32_t h = inner_flow_hash(f.data(), f.size());
  EXPECT_EQ(inner_flow_hash(f.data(), f.size()), h);
  Bytes other = f;  // same flow, next packet: different payload, IP id, TTL, checksums
  other[kEthHeader + 4] = 0x77;
  other[kEthHeader + 8] = 3;
  other[kEthHeader + 10] ^= 0x55;
  other[40] ^= 0xff;
  other.back() = 'X';
  EXPECT_EQ(inner_flow_hash(other.data(), other.size()), h);
  other.resize(50);  // shorter packet of the same flow
  EXPECT_EQ(inner_flow_hash(other.data(), other.size()), h);

  Bytes v6 = bytes(g::kInnerV6);
  const uint32_t h6 = inner_flow_hash(v6.data(), v6.size());
  v6[kEthHeader + 1] ^= 0x0f;  // flow label and traffic class are not hashed
  v6[kEthHeader + 7] = 1;      // hop limit
  v6.back() = 'X';
  EXPECT_EQ(inner_flow_hash(v6.data(), v6.size()), h6);
}

TEST(VxlanFlowHash, DiffersAcrossL4PortsAndAddresses) {
  for (const Bytes& base : {bytes(g::kInnerV4), bytes(g::kInnerV6), bytes(g::kInnerVlanV4)}) {
    size_t l3 = kEthHeader + (base[12] == 0x81 ? kVlanTag : 0);
    const bool v6 = base[12] == 0x86;
    const size_t l4 = l3 + (v6 ? kIpv6Header : kIpv4Header);
    const uint32_t h = inner_flow_hash(base.data(), base.size());
    Bytes sport = base, dport = base, src = base, dst = base, mac = base;
    sport[l4 + 1] ^= 1;
    dport[l4 + 3] ^= 1;
    src[l3 + (v6 ? 23 : 15)] ^= 1;
    dst[l3 + (v6 ? 39 : 19)] ^= 1;
    mac[5] ^= 1;
    EXPECT_NE(inner_flow_hash(sport.data(), sport.size()), h);
    EXPECT_NE(inner_flow_hash(dport.data(), dport.size()), h);
    EXPECT_NE(inner_flow_hash(src.data(), src.size()), h);
    EXPECT_NE(inner_flow_hash(dst.data(), dst.size()), h);
    EXPECT_NE(inner_flow_hash(mac.data(), mac.size()), h);
  }
}

TEST(VxlanFlowHash, ShortAndOddFrames) {
  EXPECT_EQ(inner_flow_hash(g::kInnerV4, 0), 0u);
  EXPECT_EQ(inner_flow_hash(g::kInnerV4, 13), 0u);
  // Every prefix is hashed without reading past it (ASan in the sanitize build).
  for (const Bytes& f : {bytes(g::kInnerV4), bytes(g::kInnerV6), bytes(g::kInnerVlanV4), bytes(g::kArpRequest)}) {
    for (size_t n = 0; n <= f.size(); ++n) {
      Bytes copy(f.begin(), f.begin() + static_cast<long>(n));
      (void)inner_flow_hash(copy.data(), copy.size());
      (void)inner_dscp(copy.data(), copy.size());
    }
  }
  // A non-first IPv4 fragment hashes without ports: its "port" bytes are payload.
  Bytes a = bytes(g::kInnerV4), b = a;
  put16(&a[kEthHeader + 6], 0x0010);
  put16(&b[kEthHeader + 6], 0x0010);
  b[34] ^= 0xff;
  EXPECT_EQ(inner_flow_hash(a.data(), a.size()), inner_flow_hash(b.data(), b.size()));
}

TEST(VxlanDscp, InnerFrames) {
  EXPECT_EQ(inner_dscp(g::kInnerV4, g::kInnerV4Len), 10);
  EXPECT_EQ(inner_dscp(g::kInnerV6, g::kInnerV6Len), 46);
  EXPECT_EQ(inner_dscp(g::kInnerVlanV4, g::kInnerVlanV4Len), 18);
  EXPECT_EQ(inner_dscp(g::kArpRequest, g::kArpRequestLen), 0);
  EXPECT_EQ(inner_dscp(g::kInnerV4, 15), 0);        // TOS byte missing
  EXPECT_EQ(inner_dscp(g::kInnerV4, 16), 10);       // TOS byte present
  EXPECT_EQ(inner_dscp(g::kInnerVlanV4, 19), 0);    // tagged, TOS byte missing
  EXPECT_EQ(inner_dscp(g::kInnerVlanV4, 20), 18);
  Bytes f = bytes(g::kInnerV4);
  f[kEthHeader] = 0x65;  // version does not match the EtherType
  EXPECT_EQ(inner_dscp(f.data(), f.size()), 0);
  // The outer DSCP on the golden encapsulations, read back as if they were inner frames.
  EXPECT_EQ(inner_dscp(g::kVxlanV4Dscp46, g::kVxlanV4Dscp46Len), 46);
  EXPECT_EQ(inner_dscp(g::kVxlanV6Dscp46, g::kVxlanV6Dscp46Len), 46);
  EXPECT_EQ(inner_dscp(g::kVxlanV6, g::kVxlanV6Len), 0);
}

TEST(VxlanDecap, EncapClassifyRoundTripKeepsInnerFlow) {
  for (const Bytes& inner : {bytes(g::kInnerV4), bytes(g::kInnerV6), bytes(g::kInnerVlanV4)}) {
    for (bool v6 : {false, true}) {
      const uint32_t h = inner_flow_hash(inner.data(), inner.size());
      const uint8_t dscp = inner_dscp(inner.data(), inner.size());
      const Bytes f = encapsulate(v6, dscp, inner, 0xffffff, source_port(h, 49152, 65535));
      OuterView v;
      ASSERT_EQ(classify_underlay(f.data(), f.size(), kDefaultVxlanPort, v), UnderlayStatus::kVxlan);
      EXPECT_EQ(v.vni, 0xffffffu);
      const uint8_t* in = f.data() + v.inner_offset;
      const size_t in_len = f.size() - v.inner_offset;
      ASSERT_EQ(in_len, inner.size());
      EXPECT_EQ(inner_flow_hash(in, in_len), h);
      EXPECT_EQ(inner_dscp(in, in_len), dscp);
      EXPECT_EQ(inner_dscp(f.data(), f.size()), dscp) << "outer DSCP copied from the inner";
    }
  }
}
