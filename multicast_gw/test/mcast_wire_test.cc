// IGMP/MLD codec: the time codes, every message type both ways, and the
// refusals the data path counts by name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "multicast_gw/wire.h"
#include "net/checksum.h"
#include "net/wire.h"

using namespace meridian;
using namespace meridian::mcast;

namespace {

IpAddress ip(const char* text) { return *config::parse_ip(text); }

Sender sender4() {
  Sender s{{0x02, 0, 0, 0, 0, 1}, ip("10.0.0.1")};
  return s;
}
Sender sender6() {
  Sender s{{0x02, 0, 0, 0, 0, 1}, ip("fe80::1")};
  return s;
}

TEST(McastCodes, LiteralBelowTheThresholdAndFloatingAbove) {
  // 8-bit: literal below 128; 1eeemmmm = (mant | 0x10) << (exp + 3).
  EXPECT_EQ(encode_code8(0), 0);
  EXPECT_EQ(encode_code8(100), 100);
  EXPECT_EQ(encode_code8(127), 127);
  EXPECT_EQ(encode_code8(128), 0x80);  // (0 | 16) << 3
  EXPECT_EQ(decode_code8(0x80), 128u);
  EXPECT_EQ(decode_code8(0xff), 31744u);  // (15 | 16) << 10: the largest
  EXPECT_EQ(encode_code8(31744), 0xff);
  EXPECT_EQ(encode_code8(1'000'000), 0xff) << "clamped to the largest";
  // 125 s QQIC is literal; 300 s is not representable: the next lower, 288.
  EXPECT_EQ(encode_code8(125), 125);
  EXPECT_EQ(decode_code8(encode_code8(300)), 288u);
  // Every code decodes to a value that encodes back to it (the format is monotone).
  for (unsigned c = 0; c < 256; ++c) EXPECT_EQ(encode_code8(decode_code8(static_cast<uint8_t>(c))), c) << c;
  for (uint32_t v = 0; v < 40000; v += 7) {
    EXPECT_LE(decode_code8(encode_code8(v)), v) << "never rounds up: " << v;
  }
  // 16-bit (MLDv2 Maximum Response Code, ms): literal below 32768.
  EXPECT_EQ(encode_code16(10000), 10000);
  EXPECT_EQ(encode_code16(32768), 0x8000);
  EXPECT_EQ(decode_code16(0x8000), 32768u);
  EXPECT_EQ(decode_code16(0xffff), 0x1fffu << 10);
  for (unsigned c = 0x7ff0; c < 0x10000; c += 13) {
    EXPECT_EQ(encode_code16(decode_code16(static_cast<uint16_t>(c))), c) << c;
  }
}

TEST(McastWire, Igmpv3QueryRoundTripsThroughAFrame) {
  Query q;
  q.group = ip("232.1.1.1");
  q.max_response_ms = 1000;
  q.suppress_router_side = true;
  q.robustness = 2;
  q.interval_s = 125;
  q.sources = {ip("10.10.0.5"), ip("10.10.0.6")};
  const auto f = build_query_frame(sender4(), q, 3);
  // To the group (group-specific), TTL 1, Router Alert, TOS 0xc0.
  EXPECT_EQ(f[0], 0x01);
  EXPECT_EQ(f[3], 0x01);
  EXPECT_EQ(f[14], 0x46);
  EXPECT_EQ(f[15], 0xc0);
  EXPECT_EQ(f[14 + 8], 1);
  EXPECT_EQ(f[14 + 20], 0x94);
  EXPECT_TRUE(net::ipv4_header_checksum_ok(&f[14], 24));
  FrameMembership fm;
  ASSERT_EQ(decode_frame(f, fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.source, ip("10.0.0.1"));
  EXPECT_EQ(fm.destination, ip("232.1.1.1"));
  EXPECT_EQ(fm.message.kind, MessageKind::kQuery);
  EXPECT_EQ(fm.message.version, 3);
  EXPECT_EQ(fm.message.query, q);
}

TEST(McastWire, OlderQueriesAreTellableByLengthAndCode) {
  Query q;
  q.group = ip("0.0.0.0");
  q.max_response_ms = 10000;
  FrameMembership fm;
  ASSERT_EQ(decode_frame(build_query_frame(sender4(), q, 2), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.message.version, 2);
  EXPECT_EQ(fm.destination, ip("224.0.0.1"));
  EXPECT_EQ(fm.message.query.max_response_ms, 10000u);
  ASSERT_EQ(decode_frame(build_query_frame(sender4(), q, 1), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.message.version, 1);
  EXPECT_EQ(fm.message.query.max_response_ms, 10000u) << "v1's 0 reads as 10 s";
  q.group = ip("::");
  ASSERT_EQ(decode_frame(build_query_frame(sender6(), q, 1), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.message.version, 1);
  EXPECT_EQ(fm.destination, ip("ff02::1"));
  ASSERT_EQ(decode_frame(build_query_frame(sender6(), q, 2), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.message.version, 2);
  EXPECT_EQ(fm.message.query.max_response_ms, 10000u);
}

TEST(McastWire, ReportsRoundTripAndSplitAtTheMtu) {
  std::vector<GroupRecord> recs = {{RecordType::kAllow, ip("232.1.1.1"), {ip("10.10.0.5")}},
                                   {RecordType::kToExclude, ip("239.1.1.1"), {}},
                                   {RecordType::kBlock, ip("232.1.1.2"), {ip("10.10.0.5"), ip("10.10.0.7")}}};
  auto frames = build_report_frames(sender4(), 4, recs);
  ASSERT_EQ(frames.size(), 1u);
  FrameMembership fm;
  ASSERT_EQ(decode_frame(frames[0], fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.destination, ip("224.0.0.22"));
  EXPECT_EQ(fm.message.kind, MessageKind::kReport);
  EXPECT_EQ(fm.message.records, recs);

  // 600 sources in an ALLOW over a 1500-byte MTU: split into records of at
  // most (1500 - 24 - 8 - 8) / 4 = 365 sources, each in its own report; an
  // EXCLUDE record keeps only its first part (RFC 3376 §4.2.16).
  GroupRecord big{RecordType::kAllow, ip("232.1.1.1"), {}};
  for (unsigned i = 0; i < 600; ++i) big.sources.push_back(IpAddress::v4(std::array<uint8_t, 4>{10, 0, uint8_t(i >> 8), uint8_t(i)}.data()));
  GroupRecord ex = big;
  ex.type = RecordType::kIsExclude;
  frames = build_report_frames(sender4(), 4, std::vector<GroupRecord>{big, ex});
  size_t allowed = 0, excluded = 0;
  for (const auto& f : frames) {
    EXPECT_LE(f.size() - 14, 1500u);
    ASSERT_EQ(decode_frame(f, fm), DecodeStatus::kOk);
    for (const auto& r : fm.message.records) (r.type == RecordType::kAllow ? allowed : excluded) += r.sources.size();
  }
  EXPECT_EQ(allowed, 600u);
  EXPECT_EQ(excluded, 365u);

  // MLDv2: to ff02::16, from link-local, hop limit 1, checksum over the pseudo-header.
  std::vector<GroupRecord> recs6 = {{RecordType::kIsInclude, ip("ff3e::8000:1"), {ip("2001:db8::5")}}};
  frames = build_report_frames(sender6(), 6, recs6);
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(decode_frame(frames[0], fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.destination, ip("ff02::16"));
  EXPECT_EQ(fm.message.version, 2);
  EXPECT_EQ(fm.message.records, recs6);
}

TEST(McastWire, OlderJoinsAndLeavesBecomeOneRecord) {
  FrameMembership fm;
  ASSERT_EQ(decode_frame(build_v1v2_frame(sender4(), ip("239.1.1.1"), MessageKind::kJoin, 2), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.message.kind, MessageKind::kJoin);
  EXPECT_EQ(fm.message.version, 2);
  ASSERT_EQ(fm.message.records.size(), 1u);
  EXPECT_EQ(fm.message.records[0].type, RecordType::kIsExclude);
  ASSERT_EQ(decode_frame(build_v1v2_frame(sender4(), ip("239.1.1.1"), MessageKind::kJoin, 1), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.message.version, 1);
  ASSERT_EQ(decode_frame(build_v1v2_frame(sender4(), ip("239.1.1.1"), MessageKind::kLeave, 2), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.destination, ip("224.0.0.2"));
  EXPECT_EQ(fm.message.kind, MessageKind::kLeave);
  EXPECT_EQ(fm.message.records[0].type, RecordType::kToInclude);
  ASSERT_EQ(decode_frame(build_v1v2_frame(sender6(), ip("ff0e::1"), MessageKind::kLeave, 1), fm), DecodeStatus::kOk);
  EXPECT_EQ(fm.destination, ip("ff02::2"));
  EXPECT_EQ(fm.message.kind, MessageKind::kLeave);
}

TEST(McastWire, MalformedMessagesAreRefusedByName) {
  std::vector<GroupRecord> recs = {{RecordType::kAllow, ip("232.1.1.1"), {ip("10.10.0.5"), ip("10.10.0.6")}}};
  const auto good = build_report_frames(sender4(), 4, recs)[0];
  const size_t igmp = 14 + 24;
  FrameMembership fm;
  auto status = [&](std::vector<uint8_t> f) { return decode_frame(f, fm); };
  // Bad checksum.
  auto f = good;
  f[igmp + 2] ^= 1;
  EXPECT_EQ(status(f), DecodeStatus::kBadChecksum);
  // A source count past the end (checksum kept right with RFC 1624).
  auto recount = [&](std::vector<uint8_t> g, size_t at, uint16_t value) {
    const uint8_t before[2] = {g[at], g[at + 1]};
    net::put16(&g[at], value);
    const uint8_t after[2] = {g[at], g[at + 1]};
    net::put16(&g[igmp + 2], net::checksum_replace(net::be16(&g[igmp + 2]), before, after));
    return g;
  };
  EXPECT_EQ(status(recount(good, igmp + 8 + 2, 3)), DecodeStatus::kSourcesPastEnd);
  EXPECT_EQ(status(recount(good, igmp + 6, 2)), DecodeStatus::kSourcesPastEnd) << "a record count past the end";
  // Over the decoder's limits.
  DecodeLimits tight{1, 1};
  EXPECT_EQ(decode_frame(good, fm, tight), DecodeStatus::kTooManyRecords);
  // Truncated: the IP total length says more than the frame holds.
  f = good;
  f.resize(f.size() - 3);
  EXPECT_EQ(status(f), DecodeStatus::kTruncated);
  // TTL 2; a (first) fragment; a bad IP header checksum.
  auto ip_edit = [&](size_t at, uint8_t value, bool fix_checksum) {
    auto g = good;
    g[14 + at] = value;
    if (fix_checksum) {
      net::put16(&g[14 + 10], 0);
      net::put16(&g[14 + 10], net::ipv4_header_checksum(&g[14], 24));
    }
    return g;
  };
  EXPECT_EQ(status(ip_edit(8, 2, true)), DecodeStatus::kBadIpHeader);
  EXPECT_EQ(status(ip_edit(6, 0x60, true)), DecodeStatus::kBadIpHeader) << "DF + MF";
  EXPECT_EQ(status(ip_edit(8, 2, false)), DecodeStatus::kBadIpHeader) << "checksum";
  // A record of an unknown type is skipped, the rest applies (RFC 3376 §4.2.12).
  ASSERT_EQ(status(recount(good, igmp + 8, 0x0700)), DecodeStatus::kOk);
  EXPECT_EQ(fm.message.skipped_records, 1u);
  EXPECT_TRUE(fm.message.records.empty());
  // A group that is not multicast.
  EXPECT_EQ(status(recount(good, igmp + 8 + 4, 0x0a00)), DecodeStatus::kBadGroup);
  // An unknown IGMP type; a runt message.
  std::vector<uint8_t> m(8, 0);
  m[0] = 0x30;
  net::put16(&m[2], net::checksum_finish(net::checksum_add(m.data(), m.size(), 0)));
  Membership mm;
  EXPECT_EQ(decode_igmp(m, mm), DecodeStatus::kUnknownType);
  EXPECT_EQ(decode_igmp(std::span<const uint8_t>(m.data(), 7), mm), DecodeStatus::kTruncated);
  // MLD: a query from a global address, and hop limit 2.
  Query q;
  q.group = ip("::");
  q.max_response_ms = 1000;
  Sender global = sender6();
  global.address = ip("2001:db8::1");
  EXPECT_EQ(status(build_query_frame(global, q, 2)), DecodeStatus::kBadIpHeader);
  f = build_query_frame(sender6(), q, 2);
  f[14 + 7] = 2;
  EXPECT_EQ(status(f), DecodeStatus::kBadIpHeader);
  // A report from :: (before the host has a link-local address) is
  // discarded by routers (RFC 3810 §5.2.13); so is MLD without Router Alert.
  Sender unspecified = sender6();
  unspecified.address = ip("::");
  const std::vector<GroupRecord> join6 = {{RecordType::kToExclude, ip("ff0e::1"), {}}};
  EXPECT_EQ(status(build_report_frames(unspecified, 6, join6)[0]), DecodeStatus::kBadIpHeader);
  f = build_report_frames(sender6(), 6, join6)[0];
  ASSERT_EQ(status(f), DecodeStatus::kOk);
  f[14 + 40 + 2] = 0x01;  // Router Alert -> PadN of the same length
  EXPECT_EQ(status(f), DecodeStatus::kNoRouterAlert);
}

// An independent encoder: scapy (contrib.igmpv3, inet6 MLD) built the
// fuzz seed frames (test/fuzz/corpus/mcast): every one decodes.
TEST(McastWire, FramesScapyBuiltDecode) {
  unsigned n = 0, reports = 0, queries = 0, joins = 0, leaves = 0;
  for (const auto& e : std::filesystem::directory_iterator(MERIDIAN_SOURCE_DIR "/test/fuzz/corpus/mcast")) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    FrameMembership fm;
    ASSERT_EQ(decode_frame(f, fm), DecodeStatus::kOk) << e.path();
    ++n;
    switch (fm.message.kind) {
      case MessageKind::kReport: ++reports; break;
      case MessageKind::kQuery: ++queries; break;
      case MessageKind::kJoin: ++joins; break;
      case MessageKind::kLeave: ++leaves; break;
    }
  }
  EXPECT_EQ(n, 9u);
  EXPECT_EQ(reports, 2u);
  EXPECT_EQ(queries, 3u);
  EXPECT_EQ(joins, 2u);
  EXPECT_EQ(leaves, 2u);
}

}  // namespace
