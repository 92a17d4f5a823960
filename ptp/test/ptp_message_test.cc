// The PTP codec on plain buffers: every message type round-trips, the
// rejection table names each malformed input, the in-place correction update
// and the transports (frames built, then found again, checksums valid).
#include <gtest/gtest.h>

#include <vector>

#include "net/checksum.h"
#include "net/neighbor.h"
#include "net/wire.h"
#include "ptp/message.h"
#include "ptp/transport.h"

namespace meridian::ptp {
namespace {

constexpr ClockIdentity kId{0x00, 0x1b, 0x21, 0xff, 0xfe, 0x12, 0x34, 0x56};

Message make(MessageType t) {
  Message m;
  m.header.type = t;
  m.header.domain = 127;
  m.header.flags = kFlagTwoStep | kFlagPtpTimescale;
  m.header.correction = -(int64_t{77} << 16) - 5;
  m.header.source = {kId, 3};
  m.header.sequence_id = 0xbeef;
  m.header.log_interval = -3;
  return m;
}

std::vector<uint8_t> bytes_of(const Message& m) {
  std::vector<uint8_t> b(encoded_size(m));
  EXPECT_EQ(encode(m, b), b.size());
  return b;
}

void expect_same(const Message& a, const Message& b) {
  Header ha = a.header;
  ha.length = b.header.length;
  ha.control = b.header.control;
  EXPECT_EQ(ha, b.header);
  EXPECT_EQ(a.timestamp, b.timestamp);
  EXPECT_EQ(a.requesting, b.requesting);
  EXPECT_EQ(a.unicast, b.unicast);
  EXPECT_EQ(a.management, b.management);
  if (a.header.type == MessageType::kAnnounce) {
    EXPECT_EQ(a.announce, b.announce);
  }
  if (a.header.type == MessageType::kSignaling) {
    EXPECT_EQ(a.target, b.target);
  }
}

TEST(PtpMessage, EveryTypeRoundTripsWithItsStandardLength) {
  struct Case {
    MessageType type;
    size_t length;
    uint8_t control;
  };
  for (const Case& c : {Case{MessageType::kSync, 44, 0}, Case{MessageType::kDelayReq, 44, 1},
                        Case{MessageType::kFollowUp, 44, 2}, Case{MessageType::kDelayResp, 54, 3},
                        Case{MessageType::kPdelayReq, 54, 5}, Case{MessageType::kPdelayResp, 54, 5},
                        Case{MessageType::kPdelayRespFollowUp, 54, 5}, Case{MessageType::kAnnounce, 64, 5}}) {
    Message m = make(c.type);
    m.timestamp = {0x0000123456789abcULL, 999'999'999};
    if (c.type == MessageType::kDelayResp || c.type == MessageType::kPdelayResp ||
        c.type == MessageType::kPdelayRespFollowUp) {
      m.requesting = {ClockIdentity{1, 2, 3, 4, 5, 6, 7, 8}, 9};
    }
    m.announce.gm_quality = {6, 0x21, 0x4e5d};
    m.announce.steps_removed = 1;
    const auto b = bytes_of(m);
    ASSERT_EQ(b.size(), c.length) << message_type_name(c.type);
    EXPECT_EQ(b[32], c.control) << message_type_name(c.type);
    Message d;
    ASSERT_EQ(decode(b, d), DecodeError::kNone) << message_type_name(c.type);
    EXPECT_EQ(d.header.length, c.length);
    expect_same(m, d);
  }
}

TEST(PtpMessage, SignalingCarriesEveryUnicastNegotiationTlv) {
  Message m = make(MessageType::kSignaling);
  m.header.flags = kFlagUnicast;
  m.target = {kId, 0xffff};
  m.unicast = {{TlvType::kRequestUnicastTransmission, MessageType::kAnnounce, 1, 300, false},
               {TlvType::kGrantUnicastTransmission, MessageType::kSync, -4, 60, true},
               {TlvType::kCancelUnicastTransmission, MessageType::kDelayResp, 0, 0, false},
               {TlvType::kAcknowledgeCancelUnicastTransmission, MessageType::kSync, 0, 0, false}};
  const auto b = bytes_of(m);
  EXPECT_EQ(b.size(), 44u + (4 + 6) + (4 + 8) + (4 + 2) + (4 + 2));
  Message d;
  ASSERT_EQ(decode(b, d), DecodeError::kNone);
  expect_same(m, d);
}

TEST(PtpMessage, ManagementGetResponseAndErrorRoundTrip) {
  Message get = make(MessageType::kManagement);
  get.management.target = {ClockIdentity{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0xffff};
  get.management.starting_boundary_hops = get.management.boundary_hops = 1;
  get.management.id = static_cast<uint16_t>(ManagementId::kDefaultDataSet);
  auto b = bytes_of(get);
  EXPECT_EQ(b.size(), 54u);  // header + 14 + TLV header + managementId
  Message d;
  ASSERT_EQ(decode(b, d), DecodeError::kNone);
  expect_same(get, d);

  Message resp = get;
  resp.management.action = ManagementAction::kResponse;
  DefaultDataSet dds;
  dds.priority1 = 7;
  dds.identity = kId;
  dds.domain = 24;
  dds.quality = {165, 0xfe, 0xffff};
  resp.management.data = encode_data(dds);
  b = bytes_of(resp);
  ASSERT_EQ(decode(b, d), DecodeError::kNone);
  DefaultDataSet back;
  ASSERT_TRUE(decode_data(d.management.data, back));
  EXPECT_EQ(back, dds);

  Message err = get;
  err.management.action = ManagementAction::kResponse;
  err.management.error = true;
  err.management.error_id = kMgmtErrorNoSuchId;
  b = bytes_of(err);
  ASSERT_EQ(decode(b, d), DecodeError::kNone);
  expect_same(err, d);
}

TEST(PtpMessage, DataSetsRoundTrip) {
  CurrentDataSet c{2, -(int64_t{5} << 16), int64_t{900} << 16};
  ParentDataSet p;
  p.parent = {kId, 4};
  p.gm_identity = kId;
  p.gm_quality = {7, 0x22, 0x1234};
  TimePropertiesDataSet t{37, 0x3f, 0x20};
  PortDataSet ps;
  ps.port = {kId, 2};
  ps.state = PortState::kSlave;
  ps.peer_mean_path_delay = -1;
  ps.log_sync_interval = -7;
  CurrentDataSet c2;
  ParentDataSet p2;
  TimePropertiesDataSet t2;
  PortDataSet ps2;
  ASSERT_TRUE(decode_data(encode_data(c), c2));
  ASSERT_TRUE(decode_data(encode_data(p), p2));
  ASSERT_TRUE(decode_data(encode_data(t), t2));
  ASSERT_TRUE(decode_data(encode_data(ps), ps2));
  EXPECT_EQ(c, c2);
  EXPECT_EQ(p, p2);
  EXPECT_EQ(t, t2);
  EXPECT_EQ(ps, ps2);
  EXPECT_FALSE(decode_data(std::vector<uint8_t>(25), ps2));
}

TEST(PtpMessage, MalformedInputIsRejectedWithItsReason) {
  Message m = make(MessageType::kDelayResp);
  const auto good = bytes_of(m);
  Message d;
  auto with = [&](auto mutate) {
    auto b = good;
    mutate(b);
    return decode(b, d);
  };
  EXPECT_EQ(decode(std::span<const uint8_t>(good).first(33), d), DecodeError::kTooShort);
  EXPECT_EQ(with([](auto& b) { b[1] = 0x01; }), DecodeError::kBadVersion);
  EXPECT_EQ(with([](auto& b) { b[0] = 0x05; }), DecodeError::kReservedType);
  EXPECT_EQ(with([](auto& b) { b[3] = 60; }), DecodeError::kBadLength);   // longer than the buffer
  EXPECT_EQ(with([](auto& b) { b[3] = 44; }), DecodeError::kBadLength);   // shorter than a Delay_Resp body
  EXPECT_EQ(with([](auto& b) { b[40] = 0xff; }), DecodeError::kBadTimestamp);
  // Trailing Ethernet padding past messageLength is fine.
  auto padded = good;
  padded.resize(good.size() + 6, 0);
  EXPECT_EQ(decode(padded, d), DecodeError::kNone);

  Message sig = make(MessageType::kSignaling);
  sig.unicast = {{TlvType::kRequestUnicastTransmission, MessageType::kSync, 0, 10, false}};
  auto s = bytes_of(sig);
  s[47] = 40;  // TLV length past the message
  EXPECT_EQ(decode(s, d), DecodeError::kBadTlv);
  s = bytes_of(sig);
  s[47] = 2;  // a REQUEST shorter than its fields
  EXPECT_EQ(decode(s, d), DecodeError::kBadTlv);

  Message mg = make(MessageType::kManagement);
  mg.management.id = static_cast<uint16_t>(ManagementId::kDefaultDataSet);
  auto g = bytes_of(mg);
  g[49] = 0x08;  // path trace instead of a management TLV
  EXPECT_EQ(decode(g, d), DecodeError::kBadManagement);
  for (int i = 0; i < static_cast<int>(DecodeError::kBadManagement) + 1; ++i) {
    EXPECT_STRNE(decode_error_name(static_cast<DecodeError>(i)), "unknown");
  }
}

TEST(PtpMessage, PeekAndCorrectionUpdateInPlace) {
  Message m = make(MessageType::kSync);
  auto b = bytes_of(m);
  MessageType t;
  uint16_t flags;
  uint8_t domain;
  ASSERT_TRUE(peek(b, t, flags, domain));
  EXPECT_EQ(t, MessageType::kSync);
  EXPECT_EQ(flags, kFlagTwoStep | kFlagPtpTimescale);
  EXPECT_EQ(domain, 127);
  add_correction(b, int64_t{1000} << 16);
  Message d;
  ASSERT_EQ(decode(b, d), DecodeError::kNone);
  EXPECT_EQ(d.header.correction, m.header.correction + (int64_t{1000} << 16));
  b[1] = 0x01;
  EXPECT_FALSE(peek(b, t, flags, domain));
}

TEST(PtpMessage, IdentitiesAndStatesPrintAsLinuxptpDoes) {
  EXPECT_EQ(to_string(PortIdentity{kId, 3}), "001b21.fffe.123456-3");
  EXPECT_STREQ(port_state_name(PortState::kSlave), "slave");
  EXPECT_STREQ(port_state_name(PortState::kPreMaster), "pre_master");
  EXPECT_STREQ(message_type_name(MessageType::kPdelayRespFollowUp), "pdelay_resp_follow_up");
}

TEST(PtpTransport, FramesAreFoundAgainWithValidChecksums) {
  Message m = make(MessageType::kDelayReq);
  const auto msg = bytes_of(m);
  for (Transport tr : {Transport::kL2, Transport::kUdpIpv4, Transport::kUdpIpv6}) {
    FrameAddresses a;
    a.transport = tr;
    a.src_mac = {2, 0, 0, 0, 0, 1};
    a.src_ip = {10, 0, 0, 1};
    if (tr == Transport::kUdpIpv6) a.src_ip = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    set_multicast_destination(a, false);
    std::vector<uint8_t> f(frame_header_size(tr) + msg.size());
    ASSERT_EQ(build_frame(a, true, msg, f), f.size());
    PtpLocation loc;
    ASSERT_TRUE(locate(f, loc)) << transport_name(tr);
    EXPECT_EQ(loc.transport, tr);
    EXPECT_EQ(loc.offset, frame_header_size(tr));
    EXPECT_EQ(loc.length, msg.size());
    EXPECT_TRUE(loc.event_port);
    Message d;
    EXPECT_EQ(decode(std::span<const uint8_t>(f).subspan(loc.offset, loc.length), d), DecodeError::kNone);
    if (tr == Transport::kL2) {
      EXPECT_EQ(f[0], 0x01);
      EXPECT_EQ(f[1], 0x1b);
      continue;
    }
    // The UDP checksum verifies: the sum over pseudo-header, header and data folds to zero.
    const uint8_t* ip = f.data() + 14;
    uint32_t sum;
    const uint16_t udp_len = static_cast<uint16_t>(8 + msg.size());
    if (tr == Transport::kUdpIpv4) {
      EXPECT_EQ(net::ipv4_header_checksum(ip, 20), ip[10] << 8 | ip[11]);
      sum = net::ipv4_pseudo_sum(ip + 12, ip + 16, udp_len, 17);
      EXPECT_EQ(ip[16], 224);
    } else {
      sum = net::ipv6_pseudo_sum(ip + 8, ip + 24, udp_len, 17);
      EXPECT_EQ(ip[24], 0xff);
      EXPECT_EQ(ip[25], 0x0e);
    }
    sum = net::checksum_add(f.data() + loc.udp_offset, udp_len, sum);
    EXPECT_EQ(net::checksum_finish(sum), 0) << transport_name(tr);
  }
  // Not PTP: another UDP port, another EtherType, a runt.
  std::vector<uint8_t> f(frame_header_size(Transport::kUdpIpv4) + msg.size());
  FrameAddresses a;
  set_multicast_destination(a, true);
  ASSERT_EQ(build_frame(a, false, msg, f), f.size());
  PtpLocation loc;
  ASSERT_TRUE(locate(f, loc));
  EXPECT_FALSE(loc.event_port);
  EXPECT_EQ(f[14 + 16 + 3], 107);  // 224.0.0.107
  f[14 + 20 + 3] = 0x99;           // destination port 409
  EXPECT_FALSE(locate(f, loc));
  f[12] = 0x08;
  f[13] = 0x06;
  EXPECT_FALSE(locate(f, loc));
  EXPECT_FALSE(locate(std::span<const uint8_t>(f).first(10), loc));
}

}  // namespace
}  // namespace meridian::ptp
