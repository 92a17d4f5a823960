// Packet metadata on frames built by scapy (the oracle for the header
// layouts): what each kind of frame is flagged as, the overlay's inner
// frame, and frames that only look like a kind.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/packet_meta.h"

using namespace meridian::net;

namespace {

std::vector<uint8_t> hex(const std::string& s) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
  return out;
}

PacketMeta meta_of(const std::vector<uint8_t>& f, uint16_t overlay_port = kDefaultVxlanPort) {
  PacketMeta m;
  parse_meta(f.data(), f.size(), overlay_port, m);
  return m;
}

// scapy: Ether()/IP()/UDP(dport=4789)/VXLAN(vni=100)/Ether()/IP()/UDP(319, 319)/PTP Sync bytes
const char* kVxlanPtp =
    "ffffffffffff00000000000008004500007a000100004011f66ec0000201c0000202c35012b50066b961080000000000640001005e000181"
    "02fc000000010800450000480001000040118f220a000001e0000181013f013f003411840002000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000";
// scapy: IPv6 to ff02::16 with a hop-by-hop router alert, ICMPv6MLReport2
const char* kMld2Report =
    "33330000001602fc0000000186dd6000000000240001fe800000000000000000000000000001ff0200000000000000000000000000163a0005"
    "02000001008f005d9a0000000104000000ff3e0000000000000000000000001234";
// scapy: IP(options=[Router_Alert])/IGMPv3()/IGMPv3mr(232.1.1.1 from 10.10.0.5)
const char* kIgmp3Report =
    "01005e00001602fc00000001080046c0002c00010000010239f40a000001e0000016940400002200e9eb0000000101000001e80101010a0a"
    "0005";
// scapy: IP/UDP(dport=4791)/BTH-sized payload
const char* kRoce =
    "02fc0000000502fc0000000108004500002c00010000401166be0a0000010a000002c00012b70018b50364000000000000000000000000"
    "000000";
// scapy: IPv6/ICMPv6ND_NS(tgt=fe80::2)
const char* kNeighborSolicit =
    "3333ff00000202fc0000000186dd6000000000183afffe800000000000000000000000000001ff0200000000000000000001ff0000028700"
    "7da100000000fe800000000000000000000000000002";

}  // namespace

TEST(PacketMeta, VxlanCarriesItsVniAndInnerFrame) {
  const auto f = hex(kVxlanPtp);
  PacketMeta m = meta_of(f);
  EXPECT_EQ(m.status, ParseStatus::kOk);
  EXPECT_TRUE(m.has(kMetaOverlay));
  EXPECT_TRUE(m.has(kMetaVni));
  EXPECT_FALSE(m.has(kMetaPtp));  // the PTP is inside
  EXPECT_EQ(m.vni, 100u);
  EXPECT_EQ(m.inner_offset, 14 + 20 + 8 + 8);
  EXPECT_FALSE(m.has(kMetaInnerParsed));
  parse_inner(f.data(), f.size(), m);
  ASSERT_TRUE(m.has(kMetaInnerParsed));
  EXPECT_EQ(m.inner_status, ParseStatus::kOk);
  EXPECT_EQ(m.inner.ip_version, 4);
  EXPECT_EQ(m.inner.dst_port, kPtpEventPort);
  EXPECT_EQ(m.inner.l4_offset, 14 + 20);  // relative to the inner frame

  // Another overlay port: plain UDP.
  m = meta_of(f, 8472);
  EXPECT_FALSE(m.has(kMetaOverlay));
  parse_inner(f.data(), f.size(), m);
  EXPECT_FALSE(m.has(kMetaInnerParsed));
}

TEST(PacketMeta, PtpStaysPtpWhenTheOverlayUsesItsPort) {
  const auto vx = hex(kVxlanPtp);
  const std::vector<uint8_t> ptp(vx.begin() + 50, vx.end());  // UDP to 319
  const PacketMeta m = meta_of(ptp, kPtpEventPort);
  EXPECT_TRUE(m.has(kMetaPtp));
  EXPECT_TRUE(m.has(kMetaOverlay));
}

TEST(PacketMeta, VxlanWithoutTheIFlagHasNoVni) {
  auto f = hex(kVxlanPtp);
  f[14 + 20 + 8] = 0;  // VXLAN flags
  const PacketMeta m = meta_of(f);
  EXPECT_TRUE(m.has(kMetaOverlay));
  EXPECT_FALSE(m.has(kMetaVni));
}

TEST(PacketMeta, VxlanHeaderCutShortIsNotAnOverlayFrame) {
  auto f = hex(kVxlanPtp);
  f.resize(14 + 20 + 8 + 7);
  f[16] = 0;  // IPv4 total length to match: 20 + 8 + 7
  f[17] = 35;
  const PacketMeta m = meta_of(f);
  EXPECT_EQ(m.status, ParseStatus::kOk);
  EXPECT_FALSE(m.has(kMetaOverlay));
}

TEST(PacketMeta, PtpDirectlyOverUdpAndL2) {
  const auto vx = hex(kVxlanPtp);
  const std::vector<uint8_t> inner(vx.begin() + 50, vx.end());
  EXPECT_TRUE(meta_of(inner).has(kMetaPtp));
  std::vector<uint8_t> l2(60, 0);
  l2[12] = 0x88;
  l2[13] = 0xf7;
  EXPECT_EQ(meta_of(l2).flags, kMetaPtp);
}

TEST(PacketMeta, MldBehindHopByHopAndIgmp) {
  const PacketMeta mld = meta_of(hex(kMld2Report));
  EXPECT_EQ(mld.status, ParseStatus::kOk);
  EXPECT_EQ(mld.flags, kMetaMld);
  const PacketMeta igmp = meta_of(hex(kIgmp3Report));
  EXPECT_EQ(igmp.flags, kMetaIgmp);
}

TEST(PacketMeta, RoceArpAndNeighborDiscovery) {
  EXPECT_EQ(meta_of(hex(kRoce)).flags, kMetaRoce);
  EXPECT_EQ(meta_of(hex(kNeighborSolicit)).flags, kMetaNd);
  std::vector<uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(meta_of(arp).flags, kMetaArp);
}

TEST(PacketMeta, IcmpTypeIsReadWithinTheIpv6Payload) {
  // A neighbour solicitation's type byte in Ethernet padding, after an
  // IPv6 header whose payload is empty, is not a neighbour solicitation.
  auto f = hex(kNeighborSolicit);
  f[18] = f[19] = 0;  // payload length 0
  EXPECT_EQ(meta_of(f).flags, 0);
}

TEST(PacketMeta, TruncatedFramesAreDescribedAsFarAsTheyGo) {
  const auto f = hex(kVxlanPtp);
  for (size_t len = 0; len < f.size(); ++len) {
    PacketMeta m;
    parse_meta(f.data(), len, kDefaultVxlanPort, m);
    EXPECT_FALSE(m.has(kMetaOverlay)) << len;  // the IPv4 total length no longer fits
    EXPECT_NE(m.status, ParseStatus::kOk) << len;
  }
  std::vector<uint8_t> tag = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0x00};
  PacketMeta m;
  parse_meta(tag.data(), tag.size(), kDefaultVxlanPort, m);
  EXPECT_EQ(m.status, ParseStatus::kTruncatedVlan);
  EXPECT_EQ(m.outer.ethertype, kEtherVlan);  // the punt classifier's view of it
}

TEST(PacketMeta, EthertypeAfterTagsAgreesWithTheParserAtEveryLength) {
  // QinQ + 802.1Q + IPv4, and a single tag: every cut from 14 bytes on.
  std::vector<uint8_t> qinq = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00};
  qinq.resize(qinq.size() + 20, 0);
  std::vector<uint8_t> single(qinq.begin(), qinq.begin() + 12);
  single.insert(single.end(), {0x81, 0x00, 0x00, 0x05, 0x88, 0xf7, 0, 0});
  for (const auto* f : {&qinq, &single}) {
    for (size_t len = 14; len <= f->size(); ++len) {
      PacketView v;
      parse_packet(f->data(), len, v);
      EXPECT_EQ(ethertype_after_tags(f->data(), len), v.ethertype) << len;
    }
  }
}
