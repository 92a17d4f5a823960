// The QoS classifier on scapy-made golden frames: keys from outer and VXLAN
// inner headers, ordered first-match rules, and the DSCP/CE rewrites checked
// byte for byte against scapy's own rendering of the rewritten packet.
#include <gtest/gtest.h>

#include <vector>

#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/wire.h"
#include "qos/classifier.h"
#include "test/golden/vxlan_golden.h"

using namespace meridian::qos;
namespace golden = meridian::vxlan::golden;

namespace {

std::vector<uint8_t> bytes(const uint8_t* p, size_t n) { return {p, p + n}; }

PacketKeys keys_of(const std::vector<uint8_t>& f, uint16_t ingress = 1) {
  PacketKeys k;
  read_packet_keys(f.data(), f.size(), ingress, 4789, k);
  return k;
}

PrefixMatch prefix(uint8_t version, std::initializer_list<uint8_t> addr, uint8_t len) {
  PrefixMatch p;
  p.ip_version = version;
  p.length = len;
  std::copy(addr.begin(), addr.end(), p.bytes.begin());
  return p;
}

}  // namespace

TEST(QosClassifier, ReadsOuterAndInnerKeysOfAVxlanFrame) {
  const auto f = bytes(golden::kVxlanV4Dscp46, golden::kVxlanV4Dscp46Len);
  const PacketKeys k = keys_of(f, 5);
  EXPECT_EQ(k.ingress_port, 5);
  EXPECT_EQ(k.outer.ip_version, 4);
  EXPECT_EQ(k.outer.protocol, 17);
  EXPECT_EQ(k.dscp, 46);
  EXPECT_EQ(k.outer.dst_port, 4789);
  EXPECT_EQ(k.outer.src_port, golden::kSourcePort);
  ASSERT_TRUE(k.has_vni);
  EXPECT_EQ(k.vni, golden::kVni);
  EXPECT_EQ(k.inner.ip_version, 4);
  EXPECT_EQ(k.inner.src_port, 1234);
  EXPECT_EQ(k.inner.dst_port, 5678);
  EXPECT_EQ(k.inner.src[0], 192);
  EXPECT_EQ(k.inner.dst[3], 2);

  const PacketKeys v6 = keys_of(bytes(golden::kVxlanV6Dscp46, golden::kVxlanV6Dscp46Len));
  EXPECT_EQ(v6.outer.ip_version, 6);
  EXPECT_EQ(v6.dscp, 46);
  EXPECT_TRUE(v6.has_vni);
  EXPECT_EQ(v6.inner.dst_port, 5678);

  const PacketKeys plain = keys_of(bytes(golden::kInnerV6, golden::kInnerV6Len));
  EXPECT_FALSE(plain.has_vni);
  EXPECT_EQ(plain.dscp, 46);
  EXPECT_EQ(plain.outer.protocol, 6);
  EXPECT_EQ(plain.outer.dst_port, 443);

  const PacketKeys tagged = keys_of(bytes(golden::kInnerVlanV4, golden::kInnerVlanV4Len));
  EXPECT_TRUE(tagged.tagged);
  EXPECT_EQ(tagged.dscp, 18);
}

TEST(QosClassifier, RulesMatchInOrderAndUnsetFieldsMatchAnything) {
  const auto vx = keys_of(bytes(golden::kVxlanV4, golden::kVxlanV4Len), 2);
  const auto v6 = keys_of(bytes(golden::kInnerV6, golden::kInnerV6Len), 1);
  const auto tagged = keys_of(bytes(golden::kInnerVlanV4, golden::kInnerVlanV4Len), 1);

  RuleSpec by_inner_port;  // inner UDP 5678 in VNI 100
  by_inner_port.vni = golden::kVni;
  by_inner_port.inner = FlowMatchSpec{};
  by_inner_port.inner->dst_ports = RangeMatch{5000, 6000};
  by_inner_port.leaf = 1;
  RuleSpec by_dscp;
  by_dscp.dscp_mask = uint64_t{1} << 46;
  by_dscp.leaf = 2;
  RuleSpec by_v6_prefix;
  by_v6_prefix.outer.src = prefix(6, {0x20, 0x01, 0x0d, 0xb8}, 32);
  by_v6_prefix.leaf = 3;
  RuleSpec by_pcp;
  by_pcp.pcp_mask = 0xff;
  by_pcp.leaf = 4;
  RuleSpec by_ingress;
  by_ingress.ingress_port = 2;
  by_ingress.leaf = 5;

  Classifier c({by_inner_port, by_dscp, by_pcp, by_ingress}, 9);
  EXPECT_EQ(c.classify(vx), 1u);
  EXPECT_EQ(c.classify(v6), 2u);      // DSCP 46
  EXPECT_EQ(c.classify(tagged), 4u);  // any PCP, tagged only
  PacketKeys other = vx;
  other.vni = 7;
  EXPECT_EQ(c.classify(other), 5u);   // VNI differs; ingress port 2
  other.ingress_port = 3;
  EXPECT_EQ(c.classify(other), 9u);   // the default leaf

  // A port range never matches a packet without ports; a prefix never
  // matches the other family.
  RuleSpec ports_only;
  ports_only.outer.dst_ports = RangeMatch{0, 65535};
  EXPECT_FALSE(ports_only.matches(keys_of(bytes(golden::kArpRequest, golden::kArpRequestLen))));
  EXPECT_FALSE(by_v6_prefix.matches(vx));
  RuleSpec own_v6_prefix;
  own_v6_prefix.outer.src = prefix(6, {v6.outer.src[0], v6.outer.src[1], v6.outer.src[2]}, 20);
  EXPECT_TRUE(own_v6_prefix.matches(v6));
  own_v6_prefix.outer.src->bytes[2] ^= 0x08;  // bit 20: outside the /20
  EXPECT_TRUE(own_v6_prefix.matches(v6));
  own_v6_prefix.outer.src->bytes[2] ^= 0x10;  // bit 19: inside it
  EXPECT_FALSE(own_v6_prefix.matches(v6));
  EXPECT_TRUE(prefix(4, {192, 168, 10, 0}, 23).matches(4, vx.inner.src));
  EXPECT_FALSE(prefix(4, {192, 168, 12, 0}, 23).matches(4, vx.inner.src));
  EXPECT_TRUE(prefix(4, {}, 0).matches(4, vx.inner.src));
}

TEST(QosClassifier, DscpRemarkMatchesScapyByteForByte) {
  // Outer DSCP 0 -> 46 must give exactly scapy's DSCP-46 rendering, with
  // the IPv4 header checksum updated incrementally.
  auto v4 = bytes(golden::kVxlanV4, golden::kVxlanV4Len);
  rewrite_dscp(v4.data(), v4.size(), keys_of(v4), 46);
  EXPECT_EQ(v4, bytes(golden::kVxlanV4Dscp46, golden::kVxlanV4Dscp46Len));
  auto v6 = bytes(golden::kVxlanV6, golden::kVxlanV6Len);
  rewrite_dscp(v6.data(), v6.size(), keys_of(v6), 46);
  EXPECT_EQ(v6, bytes(golden::kVxlanV6Dscp46, golden::kVxlanV6Dscp46Len));
  // And back.
  rewrite_dscp(v4.data(), v4.size(), keys_of(v4), 0);
  EXPECT_EQ(v4, bytes(golden::kVxlanV4, golden::kVxlanV4Len));
}

TEST(QosClassifier, CeMarksOnlyEctPacketsAndKeepsTheChecksumValid) {
  auto f = bytes(golden::kInnerV4, golden::kInnerV4Len);  // DSCP 10, not-ECT
  const auto original = f;
  mark_ce(f.data(), f.size(), keys_of(f));
  EXPECT_EQ(f, original);
  f[15] = static_cast<uint8_t>(f[15] | 1);  // ECT(1)
  f[24] = f[25] = 0;
  const uint16_t check = meridian::net::ipv4_header_checksum(&f[14], 20);
  f[24] = static_cast<uint8_t>(check >> 8);
  f[25] = static_cast<uint8_t>(check);
  mark_ce(f.data(), f.size(), keys_of(f));
  EXPECT_EQ(f[15], (10 << 2) | 3);
  EXPECT_EQ(meridian::net::checksum_finish(meridian::net::checksum_add(&f[14], 20, 0)), 0);
}

TEST(QosClassifier, TruncatedFramesFallToTheDefaultWithoutReadingPastTheEnd) {
  const auto full = bytes(golden::kVxlanV4, golden::kVxlanV4Len);
  RuleSpec inner;
  inner.inner = FlowMatchSpec{};
  inner.leaf = 1;
  Classifier c({inner}, 0);
  for (size_t len = 0; len <= full.size(); ++len) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(len));
    const PacketKeys k = keys_of(cut);
    // The outer IPv4 total length covers the whole frame: any cut leaves it
    // unparsed, so nothing deeper is read and the default class takes it.
    EXPECT_EQ(c.classify(k), len == full.size() ? 1u : 0u) << len;
  }
}
