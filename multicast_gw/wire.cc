#include "multicast_gw/wire.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "net/checksum.h"
#include "net/packet_meta.h"
#include "net/packet_view.h"
#include "net/wire.h"

namespace meridian::mcast {

using net::be16;
using net::put16;

std::string_view record_type_name(RecordType t) {
  switch (t) {
    case RecordType::kIsInclude: return "IS_IN";
    case RecordType::kIsExclude: return "IS_EX";
    case RecordType::kToInclude: return "TO_IN";
    case RecordType::kToExclude: return "TO_EX";
    case RecordType::kAllow: return "ALLOW";
    case RecordType::kBlock: return "BLOCK";
  }
  return "?";
}

std::string_view decode_status_name(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kOk: return "ok";
    case DecodeStatus::kTruncated: return "truncated";
    case DecodeStatus::kBadChecksum: return "bad_checksum";
    case DecodeStatus::kUnknownType: return "unknown_type";
    case DecodeStatus::kSourcesPastEnd: return "sources_past_end";
    case DecodeStatus::kBadGroup: return "bad_group";
    case DecodeStatus::kTooManyRecords: return "too_many_records";
    case DecodeStatus::kBadIpHeader: return "bad_ip_header";
    case DecodeStatus::kNoRouterAlert: return "no_router_alert";
  }
  return "?";
}

// --- time codes ----------------------------------------------------------------

namespace {

/// The shared float format: `mant_bits` of mantissa under a 3-bit exponent,
/// literal below 1 << (mant_bits + 3).
uint32_t encode_float(uint32_t value, unsigned mant_bits) {
  const uint32_t literal_limit = 1u << (mant_bits + 3);
  if (value < literal_limit) return value;
  const uint32_t hidden = 1u << mant_bits;
  for (unsigned exp = 7;; --exp) {
    // (mant | hidden) << (exp + 3) <= value, largest such.
    const uint32_t mant_full = value >> (exp + 3);
    if (mant_full >= hidden) {
      const uint32_t mant = std::min<uint32_t>(mant_full, 2 * hidden - 1) - hidden;
      return (1u << (mant_bits + 3)) | exp << mant_bits | mant;
    }
    if (exp == 0) break;
  }
  return literal_limit - 1;  // not reached: value >= literal_limit has exp 0 at least
}

uint32_t decode_float(uint32_t code, unsigned mant_bits) {
  if (code < (1u << (mant_bits + 3))) return code;
  const uint32_t exp = (code >> mant_bits) & 7;
  const uint32_t mant = code & ((1u << mant_bits) - 1);
  return (mant | 1u << mant_bits) << (exp + 3);
}

}  // namespace

uint8_t encode_code8(uint32_t value) { return static_cast<uint8_t>(encode_float(value, 4)); }
uint32_t decode_code8(uint8_t code) { return decode_float(code, 4); }
uint16_t encode_code16(uint32_t value) { return static_cast<uint16_t>(encode_float(value, 12)); }
uint32_t decode_code16(uint16_t code) { return decode_float(code, 12); }

// --- decoding ------------------------------------------------------------------

namespace {

IpAddress read_address(const uint8_t* p, uint8_t family) {
  return family == 4 ? IpAddress::v4(p) : IpAddress::v6(p);
}

/// Group records of a v3/MLDv2 report, from `at` (the first record).
/// Records of an unknown type are skipped and counted, not fatal.
DecodeStatus decode_records(std::span<const uint8_t> msg, size_t at, size_t count, uint8_t family,
                            const DecodeLimits& limits, std::vector<GroupRecord>& out, size_t& skipped) {
  const size_t alen = family == 4 ? 4 : 16;
  if (count > limits.max_records) return DecodeStatus::kTooManyRecords;
  out.reserve(count);
  for (size_t r = 0; r < count; ++r) {
    if (msg.size() < at + 4 + alen) return DecodeStatus::kSourcesPastEnd;
    const uint8_t type = msg[at];
    const size_t aux_bytes = size_t{msg[at + 1]} * 4;
    const size_t nsrc = be16(&msg[at + 2]);
    if (msg.size() < at + 4 + alen + nsrc * alen + aux_bytes) return DecodeStatus::kSourcesPastEnd;
    const size_t record_bytes = 4 + alen + nsrc * alen + aux_bytes;
    if (type < 1 || type > 6) {
      ++skipped;
      at += record_bytes;
      continue;
    }
    if (nsrc > limits.max_sources) return DecodeStatus::kTooManyRecords;
    GroupRecord rec;
    rec.type = static_cast<RecordType>(type);
    rec.group = read_address(&msg[at + 4], family);
    if (!rec.group.is_multicast()) return DecodeStatus::kBadGroup;
    rec.sources.reserve(nsrc);
    for (size_t s = 0; s < nsrc; ++s) rec.sources.push_back(read_address(&msg[at + 4 + alen + s * alen], family));
    out.push_back(std::move(rec));
    at += record_bytes;
  }
  return DecodeStatus::kOk;
}

DecodeStatus decode_sources(std::span<const uint8_t> msg, size_t at, size_t count, uint8_t family,
                            const DecodeLimits& limits, std::vector<IpAddress>& out) {
  const size_t alen = family == 4 ? 4 : 16;
  if (msg.size() < at + count * alen) return DecodeStatus::kSourcesPastEnd;
  if (count > limits.max_sources) return DecodeStatus::kTooManyRecords;
  out.reserve(count);
  for (size_t s = 0; s < count; ++s) out.push_back(read_address(&msg[at + s * alen], family));
  return DecodeStatus::kOk;
}

/// A query's group is unspecified (general) or multicast.
bool query_group_ok(const IpAddress& g) { return g.is_unspecified() || g.is_multicast(); }

void single_group(Membership& out, MessageKind kind, uint8_t version, const IpAddress& group) {
  out.kind = kind;
  out.version = version;
  out.records.push_back({kind == MessageKind::kLeave ? RecordType::kToInclude : RecordType::kIsExclude, group, {}});
}

}  // namespace

DecodeStatus decode_igmp(std::span<const uint8_t> msg, Membership& out, const DecodeLimits& limits) {
  out = Membership{};
  out.family = 4;
  if (msg.size() < 8) return DecodeStatus::kTruncated;
  if (net::checksum_finish(net::checksum_add(msg.data(), msg.size(), 0)) != 0) return DecodeStatus::kBadChecksum;
  const uint8_t type = msg[0];
  const IpAddress group = IpAddress::v4(&msg[4]);
  switch (type) {
    case kIgmpQuery: {
      out.kind = MessageKind::kQuery;
      Query& q = out.query;
      q.group = group;
      if (!query_group_ok(group)) return DecodeStatus::kBadGroup;
      if (msg.size() == 8) {
        // RFC 3376 §7.1: v1 has code 0 (read as 10 s, RFC 2236 §4), v2 the time in tenths.
        out.version = msg[1] == 0 ? 1 : 2;
        q.max_response_ms = msg[1] == 0 ? 10000 : msg[1] * 100u;
        return DecodeStatus::kOk;
      }
      if (msg.size() < 12) return DecodeStatus::kTruncated;  // 9..11 octets: neither v2 nor v3 (ignored)
      out.version = 3;
      q.max_response_ms = decode_code8(msg[1]) * 100u;
      q.suppress_router_side = msg[8] & 0x08;
      q.robustness = msg[8] & 0x07;
      q.interval_s = decode_code8(msg[9]);
      return decode_sources(msg, 12, be16(&msg[10]), 4, limits, q.sources);
    }
    case kIgmpV1Report:
    case kIgmpV2Report:
    case kIgmpV2Leave:
      if (!group.is_multicast()) return DecodeStatus::kBadGroup;
      single_group(out, type == kIgmpV2Leave ? MessageKind::kLeave : MessageKind::kJoin,
                   type == kIgmpV1Report ? 1 : 2, group);
      return DecodeStatus::kOk;
    case kIgmpV3Report:
      out.kind = MessageKind::kReport;
      out.version = 3;
      return decode_records(msg, 8, be16(&msg[6]), 4, limits, out.records, out.skipped_records);
    default: return DecodeStatus::kUnknownType;
  }
}

DecodeStatus decode_mld(std::span<const uint8_t> msg, const uint8_t* src, const uint8_t* dst, Membership& out,
                        const DecodeLimits& limits) {
  out = Membership{};
  out.family = 6;
  if (msg.size() < 4) return DecodeStatus::kTruncated;
  const uint8_t type = msg[0];
  if (type != kMldQuery && type != kMldV1Report && type != kMldV1Done && type != kMldV2Report) {
    return DecodeStatus::kUnknownType;
  }
  if (msg.size() < (type == kMldV2Report ? 8 : 24)) return DecodeStatus::kTruncated;
  const uint32_t pseudo = net::ipv6_pseudo_sum(src, dst, static_cast<uint32_t>(msg.size()), net::kProtoIcmpv6);
  if (net::checksum_finish(net::checksum_add(msg.data(), msg.size(), pseudo)) != 0) return DecodeStatus::kBadChecksum;
  if (type == kMldV2Report) {
    out.kind = MessageKind::kReport;
    out.version = 2;
    return decode_records(msg, 8, be16(&msg[6]), 6, limits, out.records, out.skipped_records);
  }
  const IpAddress group = IpAddress::v6(&msg[8]);
  if (type != kMldQuery) {
    if (!group.is_multicast()) return DecodeStatus::kBadGroup;
    single_group(out, type == kMldV1Done ? MessageKind::kLeave : MessageKind::kJoin, 1, group);
    return DecodeStatus::kOk;
  }
  out.kind = MessageKind::kQuery;
  Query& q = out.query;
  q.group = group;
  if (!query_group_ok(group)) return DecodeStatus::kBadGroup;
  if (msg.size() == 24) {  // RFC 3810 §8.1: MLDv1 query is 24 octets
    out.version = 1;
    q.max_response_ms = be16(&msg[4]);
    return DecodeStatus::kOk;
  }
  if (msg.size() < 28) return DecodeStatus::kTruncated;
  out.version = 2;
  q.max_response_ms = decode_code16(be16(&msg[4]));
  q.suppress_router_side = msg[24] & 0x08;
  q.robustness = msg[24] & 0x07;
  q.interval_s = decode_code8(msg[25]);
  return decode_sources(msg, 28, be16(&msg[26]), 6, limits, q.sources);
}

DecodeStatus decode_frame(std::span<const uint8_t> frame, FrameMembership& out, const DecodeLimits& limits) {
  out = FrameMembership{};
  net::PacketView v;
  if (net::parse_packet(frame.data(), frame.size(), v) != net::ParseStatus::kOk) return DecodeStatus::kTruncated;
  out.vlan_count = v.vlan_count;
  const uint8_t* ip = frame.data() + v.l3_offset;
  if (v.ip_version == 4) {
    if (v.l4_proto != net::kProtoIgmp) return DecodeStatus::kUnknownType;
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    // Fragments (first ones too) and bad header checksums: the source
    // address decides the querier election, so it must be the sender's.
    if ((be16(ip + 6) & 0x3fff) != 0 || !net::ipv4_header_checksum_ok(ip, ihl)) return DecodeStatus::kBadIpHeader;
    const size_t total = be16(ip + 2);
    out.source = IpAddress::v4(ip + 12);
    out.destination = IpAddress::v4(ip + 16);
    // RFC 3376 §4: TTL 1. (The Router Alert option is not required of
    // receivers: hosts behind old stacks omit it.)
    if (ip[8] != 1) return DecodeStatus::kBadIpHeader;
    return decode_igmp(frame.subspan(v.l3_offset + ihl, total - ihl), out.message, limits);
  }
  if (v.ip_version != 6) return DecodeStatus::kUnknownType;
  size_t at = size_t{v.l3_offset} + net::kIpv6Header;
  const size_t end = at + be16(ip + 4);
  uint8_t next = v.l4_proto;
  bool router_alert = false;
  if (next == net::kProtoHopByHop) {
    if (end < at + 8) return DecodeStatus::kTruncated;
    next = frame[at];
    const size_t hbh_end = at + (size_t{frame[at + 1]} + 1) * 8;
    if (hbh_end > end) return DecodeStatus::kTruncated;
    // RFC 2711: option type 5, length 2, value 0 (MLD); Pad1 is one byte.
    for (size_t o = at + 2; o < hbh_end;) {
      if (frame[o] == 0) {
        ++o;
        continue;
      }
      if (o + 2 > hbh_end || o + 2 + frame[o + 1] > hbh_end) break;
      if (frame[o] == 5 && frame[o + 1] == 2 && be16(&frame[o + 2]) == 0) router_alert = true;
      o += 2 + size_t{frame[o + 1]};
    }
    at = hbh_end;
  }
  if (next != net::kProtoIcmpv6) return DecodeStatus::kUnknownType;
  out.source = IpAddress::v6(ip + 8);
  out.destination = IpAddress::v6(ip + 24);
  const DecodeStatus s = decode_mld(frame.subspan(at, end - at), ip + 8, ip + 24, out.message, limits);
  if (s != DecodeStatus::kOk) return s;
  // RFC 3810 §5.1.14, §5.2.13, §7.4: hop limit 1, a link-local source (a
  // report from :: is discarded by routers), the Router Alert option.
  const bool link_local = ip[8] == 0xfe && (ip[9] & 0xc0) == 0x80;
  if (ip[7] != 1 || !link_local) return DecodeStatus::kBadIpHeader;
  if (!router_alert) return DecodeStatus::kNoRouterAlert;
  return DecodeStatus::kOk;
}

// --- encoding ------------------------------------------------------------------

void multicast_mac(const IpAddress& group, uint8_t mac[6]) {
  if (group.is_v4()) {
    const uint8_t m[6] = {0x01, 0x00, 0x5e, static_cast<uint8_t>(group.bytes[1] & 0x7f), group.bytes[2],
                          group.bytes[3]};
    std::memcpy(mac, m, 6);
  } else {
    mac[0] = mac[1] = 0x33;
    std::memcpy(mac + 2, &group.bytes[12], 4);
  }
}

namespace {

const IpAddress kAllSystems = IpAddress::v4(std::array<uint8_t, 4>{224, 0, 0, 1}.data());
const IpAddress kIgmpV3Routers = IpAddress::v4(std::array<uint8_t, 4>{224, 0, 0, 22}.data());
const IpAddress kAllRouters = IpAddress::v4(std::array<uint8_t, 4>{224, 0, 0, 2}.data());
const IpAddress kAllNodes6 = IpAddress::v6(std::array<uint8_t, 16>{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}.data());
const IpAddress kMldV2Routers6 =
    IpAddress::v6(std::array<uint8_t, 16>{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16}.data());
const IpAddress kAllRouters6 = IpAddress::v6(std::array<uint8_t, 16>{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}.data());

constexpr size_t kIpv4WithAlert = 24;     // 20 + Router Alert option (RFC 2113)
constexpr size_t kIpv6WithHopByHop = 48;  // 40 + hop-by-hop: Router Alert (RFC 2711) + PadN

/// Wraps an IGMP or MLD message (checksum still 0) in Ethernet and IP
/// headers to `dst`, and fills the checksums.
std::vector<uint8_t> frame_around(const Sender& from, const IpAddress& dst, std::vector<uint8_t> msg) {
  const bool v4 = dst.is_v4();
  const size_t ip_len = v4 ? kIpv4WithAlert : kIpv6WithHopByHop;
  std::vector<uint8_t> f(net::kEthHeader + ip_len + msg.size());
  multicast_mac(dst, f.data());
  std::memcpy(&f[6], from.mac, 6);
  put16(&f[12], v4 ? net::kEtherIpv4 : net::kEtherIpv6);
  uint8_t* ip = &f[net::kEthHeader];
  uint8_t* l4 = ip + ip_len;
  std::memcpy(l4, msg.data(), msg.size());
  if (v4) {
    ip[0] = 0x46;
    ip[1] = 0xc0;  // Internetwork Control (RFC 3376 §4)
    put16(ip + 2, static_cast<uint16_t>(ip_len + msg.size()));
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 1;
    ip[9] = net::kProtoIgmp;
    std::memcpy(ip + 12, from.address.bytes.data(), 4);
    std::memcpy(ip + 16, dst.bytes.data(), 4);
    const uint8_t alert[4] = {0x94, 0x04, 0x00, 0x00};
    std::memcpy(ip + 20, alert, 4);
    put16(ip + 10, net::ipv4_header_checksum(ip, kIpv4WithAlert));
    put16(l4 + 2, net::checksum_finish(net::checksum_add(l4, msg.size(), 0)));
  } else {
    ip[0] = 0x60;
    put16(ip + 4, static_cast<uint16_t>(8 + msg.size()));
    ip[6] = net::kProtoHopByHop;
    ip[7] = 1;
    std::memcpy(ip + 8, from.address.bytes.data(), 16);
    std::memcpy(ip + 24, dst.bytes.data(), 16);
    const uint8_t hbh[8] = {net::kProtoIcmpv6, 0, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00};  // RA (MLD) + PadN
    std::memcpy(ip + 40, hbh, 8);
    const uint32_t pseudo = net::ipv6_pseudo_sum(ip + 8, ip + 24, static_cast<uint32_t>(msg.size()), net::kProtoIcmpv6);
    put16(l4 + 2, net::checksum_finish(net::checksum_add(l4, msg.size(), pseudo)));
  }
  return f;
}

void append_address(std::vector<uint8_t>& out, const IpAddress& a) {
  out.insert(out.end(), a.bytes.begin(), a.bytes.begin() + static_cast<long>(a.size()));
}

}  // namespace

std::vector<uint8_t> build_query_frame(const Sender& from, const Query& q, uint8_t version) {
  const bool v4 = q.group.is_v4();
  std::vector<uint8_t> msg;
  const IpAddress& dst = q.general() ? (v4 ? kAllSystems : kAllNodes6) : q.group;
  const uint8_t s_qrv = static_cast<uint8_t>((q.suppress_router_side ? 0x08 : 0) | (q.robustness & 0x07));
  if (v4) {
    msg.assign(version == 3 ? 12 : 8, 0);
    msg[0] = kIgmpQuery;
    // v1: code 0; v2: tenths, literal (at most 25.5 s); v3: the float code.
    const uint32_t tenths = q.max_response_ms / 100;
    msg[1] = version == 1 ? 0 : version == 2 ? static_cast<uint8_t>(std::min<uint32_t>(tenths, 255)) : encode_code8(tenths);
    std::memcpy(&msg[4], q.group.bytes.data(), 4);
    if (version == 3) {
      msg[8] = s_qrv;
      msg[9] = encode_code8(q.interval_s);
      put16(&msg[10], static_cast<uint16_t>(q.sources.size()));
      for (const auto& s : q.sources) append_address(msg, s);
    }
  } else {
    msg.assign(version == 2 ? 28 : 24, 0);
    msg[0] = kMldQuery;
    put16(&msg[4], version == 2 ? encode_code16(q.max_response_ms)
                                : static_cast<uint16_t>(std::min<uint32_t>(q.max_response_ms, 65535)));
    std::memcpy(&msg[8], q.group.bytes.data(), 16);
    if (version == 2) {
      msg[24] = s_qrv;
      msg[25] = encode_code8(q.interval_s);
      put16(&msg[26], static_cast<uint16_t>(q.sources.size()));
      for (const auto& s : q.sources) append_address(msg, s);
    }
  }
  return frame_around(from, dst, std::move(msg));
}

std::vector<std::vector<uint8_t>> build_report_frames(const Sender& from, uint8_t family,
                                                       std::span<const GroupRecord> records, size_t mtu) {
  const bool v4 = family == 4;
  const size_t alen = v4 ? 4 : 16;
  const size_t room = mtu - (v4 ? kIpv4WithAlert : kIpv6WithHopByHop) - 8;  // for records
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint8_t> msg;
  uint16_t count = 0;
  auto start = [&] {
    msg.assign(8, 0);
    msg[0] = v4 ? kIgmpV3Report : kMldV2Report;
    count = 0;
  };
  auto finish = [&] {
    if (!count) return;
    put16(&msg[6], count);
    frames.push_back(frame_around(from, v4 ? kIgmpV3Routers : kMldV2Routers6, msg));
    start();
  };
  start();
  const size_t max_sources = (room - 4 - alen) / alen;
  for (const auto& rec : records) {
    size_t first = 0;
    do {
      const size_t n = std::min(rec.sources.size() - first, max_sources);
      const size_t bytes = 4 + alen + n * alen;
      if (msg.size() - 8 + bytes > room) finish();
      msg.push_back(static_cast<uint8_t>(rec.type));
      msg.push_back(0);
      msg.push_back(static_cast<uint8_t>(n >> 8));
      msg.push_back(static_cast<uint8_t>(n));
      append_address(msg, rec.group);
      for (size_t s = first; s < first + n; ++s) append_address(msg, rec.sources[s]);
      ++count;
      first += n;
      // RFC 3376 §4.2.16: an EXCLUDE record keeps its first part only.
      if (rec.type == RecordType::kIsExclude || rec.type == RecordType::kToExclude) break;
    } while (first < rec.sources.size());
  }
  finish();
  return frames;
}

std::vector<uint8_t> build_v1v2_frame(const Sender& from, const IpAddress& group, MessageKind kind, uint8_t version) {
  const bool v4 = group.is_v4();
  const bool leave = kind == MessageKind::kLeave;
  std::vector<uint8_t> msg(v4 ? 8 : 24, 0);
  if (v4) {
    msg[0] = leave ? kIgmpV2Leave : version == 1 ? kIgmpV1Report : kIgmpV2Report;
    std::memcpy(&msg[4], group.bytes.data(), 4);
  } else {
    msg[0] = leave ? kMldV1Done : kMldV1Report;
    std::memcpy(&msg[8], group.bytes.data(), 16);
  }
  const IpAddress& dst = leave ? (v4 ? kAllRouters : kAllRouters6) : group;
  return frame_around(from, dst, std::move(msg));
}

}  // namespace meridian::mcast
