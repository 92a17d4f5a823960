// Header parsing on plain buffers: the common cases and every truncation.
#include <gtest/gtest.h>

#include <vector>

#include "net/packet_view.h"

using namespace meridian::net;

namespace {

std::vector<uint8_t> eth(uint16_t type) {
  std::vector<uint8_t> f(12, 0xaa);
  f.push_back(static_cast<uint8_t>(type >> 8));
  f.push_back(static_cast<uint8_t>(type));
  return f;
}

void append_vlan(std::vector<uint8_t>& f, uint16_t tci, uint16_t inner) {
  // f ends with the TPID already; add TCI and the inner EtherType
  f.push_back(static_cast<uint8_t>(tci >> 8));
  f.push_back(static_cast<uint8_t>(tci));
  f.push_back(static_cast<uint8_t>(inner >> 8));
  f.push_back(static_cast<uint8_t>(inner));
}

std::vector<uint8_t> ipv4_udp(uint16_t sport, uint16_t dport, size_t payload) {
  std::vector<uint8_t> ip(20, 0);
  ip[0] = 0x45;
  const uint16_t total = static_cast<uint16_t>(20 + 8 + payload);
  ip[2] = static_cast<uint8_t>(total >> 8);
  ip[3] = static_cast<uint8_t>(total);
  ip[8] = 64;
  ip[9] = kProtoUdp;
  std::vector<uint8_t> udp = {static_cast<uint8_t>(sport >> 8), static_cast<uint8_t>(sport),
                              static_cast<uint8_t>(dport >> 8), static_cast<uint8_t>(dport), 0, 0, 0, 0};
  ip.insert(ip.end(), udp.begin(), udp.end());
  ip.resize(ip.size() + payload, 0);
  return ip;
}

}  // namespace

TEST(PacketView, Ipv4Udp) {
  auto f = eth(kEtherIpv4);
  auto ip = ipv4_udp(1234, 4789, 10);
  f.insert(f.end(), ip.begin(), ip.end());
  PacketView v;
  ASSERT_EQ(parse_packet(f.data(), f.size(), v), ParseStatus::kOk);
  EXPECT_EQ(v.ip_version, 4);
  EXPECT_EQ(v.l3_offset, 14);
  EXPECT_EQ(v.l4_offset, 34);
  EXPECT_EQ(v.src_port, 1234);
  EXPECT_EQ(v.dst_port, 4789);
}

TEST(PacketView, DoubleTaggedIpv6Tcp) {
  auto f = eth(kEtherQinQ);
  append_vlan(f, 0x2064, kEtherVlan);  // PCP 1, VID 100
  append_vlan(f, 0x00c8, kEtherIpv6);  // VID 200
  std::vector<uint8_t> ip6(40, 0);
  ip6[0] = 0x60;
  ip6[5] = 20;
  ip6[6] = kProtoTcp;
  f.insert(f.end(), ip6.begin(), ip6.end());
  std::vector<uint8_t> tcp(20, 0);
  tcp[0] = 0x01; tcp[1] = 0xbb; tcp[2] = 0xc0; tcp[3] = 0x00;
  f.insert(f.end(), tcp.begin(), tcp.end());
  PacketView v;
  ASSERT_EQ(parse_packet(f.data(), f.size(), v), ParseStatus::kOk);
  EXPECT_EQ(v.vlan_count, 2);
  EXPECT_EQ(v.vlan_id(0), 100);
  EXPECT_EQ(v.vlan_pcp(0), 1);
  EXPECT_EQ(v.vlan_id(1), 200);
  EXPECT_EQ(v.ethertype, kEtherIpv6);
  EXPECT_EQ(v.l3_offset, 22);
  EXPECT_EQ(v.l4_offset, 62);
  EXPECT_EQ(v.src_port, 443);
  EXPECT_EQ(v.dst_port, 0xc000);
}

TEST(PacketView, NonIpIsOk) {
  auto f = eth(0x88cc);
  f.resize(60, 0);
  PacketView v;
  EXPECT_EQ(parse_packet(f.data(), f.size(), v), ParseStatus::kOk);
  EXPECT_EQ(v.ethertype, 0x88cc);
  EXPECT_EQ(v.ip_version, 0);
}

TEST(PacketView, Ipv4FragmentHasNoL4) {
  auto f = eth(kEtherIpv4);
  auto ip = ipv4_udp(1, 2, 0);
  ip[7] = 0x10;  // fragment offset 16
  f.insert(f.end(), ip.begin(), ip.end());
  PacketView v;
  EXPECT_EQ(parse_packet(f.data(), f.size(), v), ParseStatus::kOk);
  EXPECT_TRUE(v.ip_fragment);
  EXPECT_EQ(v.l4_offset, 0);
}

TEST(PacketView, EveryTruncationIsReportedNotRead) {
  auto f = eth(kEtherIpv4);
  auto ip = ipv4_udp(1, 2, 0);
  f.insert(f.end(), ip.begin(), ip.end());
  PacketView v;
  for (size_t len = 0; len < f.size(); ++len) {
    ParseStatus s = parse_packet(f.data(), len, v);
    EXPECT_NE(s, ParseStatus::kOk) << "len " << len;
  }
  EXPECT_EQ(parse_packet(f.data(), 13, v), ParseStatus::kRunt);
  EXPECT_EQ(parse_packet(f.data(), 20, v), ParseStatus::kTruncatedL3);
}

TEST(PacketView, BadIpv4HeaderLength) {
  auto f = eth(kEtherIpv4);
  auto ip = ipv4_udp(1, 2, 0);
  ip[0] = 0x44;  // IHL 4 words
  f.insert(f.end(), ip.begin(), ip.end());
  PacketView v;
  EXPECT_EQ(parse_packet(f.data(), f.size(), v), ParseStatus::kBadIpHeader);
}

TEST(PacketView, TruncatedVlan) {
  auto f = eth(kEtherVlan);
  f.push_back(0);
  PacketView v;
  EXPECT_EQ(parse_packet(f.data(), f.size(), v), ParseStatus::kTruncatedVlan);
}
