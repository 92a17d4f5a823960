// The transparent clock's wire part: find PTP in forwarded frames (L2, UDP
// over IPv4 and IPv6, and inside VXLAN) and add a residence time to the
// correctionField with every enclosing UDP checksum still valid.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/wire.h"
#include "ptp/transparent.h"
#include "ptp/transport.h"

using namespace meridian::ptp;
namespace net = meridian::net;

namespace {

std::vector<uint8_t> ptp_frame(Transport t, MessageType type, uint16_t flags, int64_t correction,
                               const PortIdentity* source = nullptr, const PortIdentity* requesting = nullptr) {
  Message m;
  m.header.type = type;
  m.header.flags = flags;
  m.header.correction = correction;
  m.header.sequence_id = 77;
  m.header.source = source ? *source : PortIdentity{ClockIdentity{1, 2, 3, 0xff, 0xfe, 4, 5, 6}, 1};
  if (requesting) m.requesting = *requesting;
  std::vector<uint8_t> msg(encoded_size(m));
  encode(m, msg);
  FrameAddresses a;
  a.transport = t;
  a.src_ip = {10, 0, 0, 1};
  if (t == Transport::kUdpIpv6) a.src_ip = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  set_multicast_destination(a, false);
  std::vector<uint8_t> frame(frame_header_size(t) + msg.size());
  build_frame(a, is_event(type), msg, frame);
  return frame;
}

// True when the UDP checksum at `udp` (IPv4 or IPv6 header at `ip`) verifies.
bool udp_checksum_ok(const std::vector<uint8_t>& f, size_t ip, size_t udp, bool v6) {
  const uint16_t len = static_cast<uint16_t>(f[udp + 4] << 8 | f[udp + 5]);
  uint32_t sum = v6 ? net::ipv6_pseudo_sum(&f[ip + 8], &f[ip + 24], len, 17) : net::ipv4_pseudo_sum(&f[ip + 12], &f[ip + 16], len, 17);
  sum = net::checksum_add(&f[udp], len, sum);
  return net::checksum_finish(sum) == 0;
}

int64_t correction_of(const std::vector<uint8_t>& f, const TcFrame& t) {
  Message m;
  EXPECT_EQ(decode(std::span<const uint8_t>(f).subspan(t.ptp_offset), m), DecodeError::kNone);
  return m.header.correction;
}

}  // namespace

TEST(TransparentClock, AddsResidenceOverL2Udp4AndUdp6WithValidChecksums) {
  for (Transport t : {Transport::kL2, Transport::kUdpIpv4, Transport::kUdpIpv6}) {
    auto f = ptp_frame(t, MessageType::kSync, 0, 5 * 65536);
    TcFrame tc;
    ASSERT_TRUE(tc_locate(f, 4789, tc)) << transport_name(t);
    TcFrame same_port;  // an overlay configured on PTP's own port still finds it directly
    ASSERT_TRUE(tc_locate(f, 319, same_port)) << transport_name(t);
    EXPECT_EQ(same_port.ptp_offset, tc.ptp_offset);
    EXPECT_FALSE(same_port.in_vxlan);
    EXPECT_EQ(tc.type, MessageType::kSync);
    EXPECT_EQ(tc.sequence, 77);
    EXPECT_FALSE(tc.in_vxlan);
    tc_add_correction(f, tc, 1234 * 65536);
    EXPECT_EQ(correction_of(f, tc), 1239 * 65536) << transport_name(t);
    if (t == Transport::kUdpIpv4) {
      EXPECT_TRUE(udp_checksum_ok(f, 14, 34, false));
    } else if (t == Transport::kUdpIpv6) {
      EXPECT_TRUE(udp_checksum_ok(f, 14, 54, true));
    }
  }
}

TEST(TransparentClock, FindsPtpInsideVxlanAndKeepsBothChecksums) {
  const auto inner = ptp_frame(Transport::kUdpIpv4, MessageType::kDelayReq, 0, 0);
  // Outer IPv6 + UDP (with a checksum, as IPv6 needs) + VXLAN around it.
  std::vector<uint8_t> f(14 + 40 + 8 + 8 + inner.size(), 0);
  f[12] = 0x86; f[13] = 0xdd;
  uint8_t* ip = &f[14];
  ip[0] = 0x60;
  const uint16_t udp_len = static_cast<uint16_t>(8 + 8 + inner.size());
  ip[4] = static_cast<uint8_t>(udp_len >> 8); ip[5] = static_cast<uint8_t>(udp_len);
  ip[6] = 17; ip[7] = 64;
  ip[8] = 0xfd; ip[23] = 1; ip[24] = 0xfd; ip[39] = 2;
  uint8_t* udp = &f[54];
  udp[0] = 0xc0; udp[1] = 0x00; udp[2] = 0x12; udp[3] = 0xb5;  // 49152 -> 4789
  udp[4] = static_cast<uint8_t>(udp_len >> 8); udp[5] = static_cast<uint8_t>(udp_len);
  f[62] = 0x08; f[65] = 0; f[66] = 0; f[67] = 100;  // VXLAN I flag, VNI 100 (bytes 4..6 of the header)
  std::memcpy(&f[70], inner.data(), inner.size());
  uint32_t sum = net::ipv6_pseudo_sum(ip + 8, ip + 24, udp_len, 17);
  sum = net::checksum_add(udp, udp_len, sum);
  const uint16_t c = net::checksum_finish(sum);
  udp[6] = static_cast<uint8_t>(c >> 8); udp[7] = static_cast<uint8_t>(c);
  ASSERT_TRUE(udp_checksum_ok(f, 14, 54, true));

  TcFrame tc;
  ASSERT_TRUE(tc_locate(f, 4789, tc));
  EXPECT_TRUE(tc.in_vxlan);
  EXPECT_EQ(tc.type, MessageType::kDelayReq);
  EXPECT_EQ(tc.checksum_count, 2);
  tc_add_correction(f, tc, 2500 * 65536);
  EXPECT_EQ(correction_of(f, tc), 2500 * 65536);
  EXPECT_TRUE(udp_checksum_ok(f, 70 + 14, 70 + 34, false));  // inner
  EXPECT_TRUE(udp_checksum_ok(f, 14, 54, true));             // outer
  EXPECT_FALSE(tc_locate(f, 4790, tc));                      // another VXLAN port: not ours to look into
}

TEST(TransparentClock, TwoStepSyncAndFollowUpShareAKey) {
  const auto sync = ptp_frame(Transport::kUdpIpv4, MessageType::kSync, kFlagTwoStep, 0);
  const auto fup = ptp_frame(Transport::kUdpIpv4, MessageType::kFollowUp, 0, 0);
  TcFrame a, b;
  ASSERT_TRUE(tc_locate(sync, 4789, a));
  ASSERT_TRUE(tc_locate(fup, 4789, b));
  EXPECT_TRUE(a.flags & kFlagTwoStep);
  EXPECT_EQ(tc_key(a), tc_key(b));
  b.sequence++;
  EXPECT_NE(tc_key(a), tc_key(b));
}

// A two-step TC carries a Delay_Req's residence in the Delay_Resp that
// answers it: the master's Delay_Resp names the requester in
// requestingPortIdentity, which keys it to the Delay_Req that requester sent.
TEST(TransparentClock, DelayReqAndItsDelayRespShareAKey) {
  const PortIdentity slave{ClockIdentity{9, 9, 9, 0xff, 0xfe, 9, 9, 9}, 1};
  const PortIdentity master{ClockIdentity{1, 2, 3, 0xff, 0xfe, 4, 5, 6}, 1};
  const PortIdentity other{ClockIdentity{9, 9, 9, 0xff, 0xfe, 9, 9, 8}, 1};
  const auto req = ptp_frame(Transport::kUdpIpv4, MessageType::kDelayReq, 0, 0, &slave);
  const auto resp = ptp_frame(Transport::kUdpIpv4, MessageType::kDelayResp, 0, 0, &master, &slave);
  const auto resp_other = ptp_frame(Transport::kUdpIpv4, MessageType::kDelayResp, 0, 0, &master, &other);
  const auto sync = ptp_frame(Transport::kUdpIpv4, MessageType::kSync, kFlagTwoStep, 0, &slave);
  TcFrame a, b, c, d;
  ASSERT_TRUE(tc_locate(req, 4789, a));
  ASSERT_TRUE(tc_locate(resp, 4789, b));
  ASSERT_TRUE(tc_locate(resp_other, 4789, c));
  ASSERT_TRUE(tc_locate(sync, 4789, d));
  EXPECT_EQ(b.requesting, slave);
  EXPECT_EQ(tc_key(a), tc_key(b));
  EXPECT_NE(tc_key(a), tc_key(c));  // another requester's answer
  EXPECT_NE(tc_key(a), tc_key(d));  // a Sync from the same port and sequence
  // A Delay_Resp cut short of its requestingPortIdentity is not located.
  auto cut = resp;
  cut.resize(cut.size() - 4);
  EXPECT_FALSE(tc_locate(cut, 4789, c));
}

TEST(TransparentClock, ChecksumReplaceMatchesRecomputation) {
  uint8_t data[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const uint16_t before = net::checksum_finish(net::checksum_add(data, 12, 0));
  uint8_t old[8];
  std::memcpy(old, data + 2, 8);
  for (int i = 2; i < 10; ++i) data[i] = static_cast<uint8_t>(0xf0 + i);
  EXPECT_EQ(net::checksum_replace(before, {old, 8}, {data + 2, 8}), net::checksum_finish(net::checksum_add(data, 12, 0)));
}
