// IGMP (v1, v2, v3: RFC 1112, 2236, 3376/9776) and MLD (v1, v2: RFC 2710,
// 3810) messages: decoding what hosts and other routers send, encoding the
// queries and reports Meridian sends, and the floating-point time codes.
// Pure and DPDK-free: unit-tested and fuzzed on plain buffers. IGMP and MLD
// share one message model; `family` (4 or 6) tells them apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "config/net_types.h"

namespace meridian::mcast {

using config::IpAddress;

inline constexpr uint8_t kIgmpQuery = 0x11, kIgmpV1Report = 0x12, kIgmpV2Report = 0x16, kIgmpV2Leave = 0x17,
                         kIgmpV3Report = 0x22;
inline constexpr uint8_t kMldQuery = 130, kMldV1Report = 131, kMldV1Done = 132, kMldV2Report = 143;

/// Group record types (RFC 3376 §4.2.12, RFC 3810 §5.2.12).
enum class RecordType : uint8_t {
  kIsInclude = 1,  // current state
  kIsExclude = 2,
  kToInclude = 3,  // filter-mode change
  kToExclude = 4,
  kAllow = 5,      // source-list change
  kBlock = 6,
};
std::string_view record_type_name(RecordType t);

struct GroupRecord {
  RecordType type = RecordType::kIsInclude;
  IpAddress group;
  std::vector<IpAddress> sources;
  bool operator==(const GroupRecord&) const = default;
};

/// A query: general (group unspecified), group-specific, or group-and-source
/// specific (sources not empty).
struct Query {
  IpAddress group;               // family set, all zero for a general query
  uint32_t max_response_ms = 0;  // decoded Max Resp Code (IGMPv1: 0)
  bool suppress_router_side = false;  // S flag (v3/MLDv2)
  uint8_t robustness = 0;        // QRV (v3/MLDv2; 0 = not given)
  uint32_t interval_s = 0;       // decoded QQIC (v3/MLDv2; 0 = not given)
  std::vector<IpAddress> sources;
  bool general() const { return group.is_unspecified(); }
  bool operator==(const Query&) const = default;
};

enum class MessageKind : uint8_t {
  kQuery,
  kReport,     // IGMPv3 / MLDv2 report: `records`
  kJoin,       // IGMPv1/v2 report, MLDv1 report: one group, any source
  kLeave,      // IGMPv2 leave, MLDv1 done
};

struct Membership {
  uint8_t family = 4;      // 4: IGMP, 6: MLD
  MessageKind kind = MessageKind::kQuery;
  /// The protocol version the message belongs to: IGMP 1, 2 or 3; MLD 1 or 2
  /// (a query's version follows RFC 3376 §7.1 / RFC 3810 §8.1).
  uint8_t version = 0;
  Query query;                      // kQuery
  std::vector<GroupRecord> records; // kReport; kJoin/kLeave: one record, the group
  size_t skipped_records = 0;       // of unknown types: ignored, the rest applies (RFC 3376 §4.2.12)
};

/// Why a message was refused; every value has a drop-reason name.
enum class DecodeStatus : uint8_t {
  kOk,
  kTruncated,          // shorter than its fixed part
  kBadChecksum,
  kUnknownType,        // not a membership message (or an unknown IGMP type)
  kSourcesPastEnd,     // a source count or aux length runs past the message
  kBadGroup,           // a group address that is not multicast (or a query for a non-multicast group)
  kTooManyRecords,     // more records or sources than the decoder's limits
  kBadIpHeader,        // TTL/hop limit not 1, a bad IPv4 header checksum, a fragment, an MLD source not link-local
  kNoRouterAlert,      // MLD without the hop-by-hop Router Alert (RFC 3810 §7.4)
};
std::string_view decode_status_name(DecodeStatus s);

struct DecodeLimits {
  size_t max_records = 1024;
  size_t max_sources = 1024;  // per record or query
};

/// Decodes an IGMP message (the IPv4 payload). The checksum covers the message.
DecodeStatus decode_igmp(std::span<const uint8_t> msg, Membership& out, const DecodeLimits& limits = {});
/// Decodes an MLD message (the ICMPv6 payload after any extension headers).
/// The checksum covers the IPv6 pseudo-header of `src`/`dst`.
DecodeStatus decode_mld(std::span<const uint8_t> msg, const uint8_t* src, const uint8_t* dst, Membership& out,
                        const DecodeLimits& limits = {});

/// A membership message found in an Ethernet frame, with the addresses the
/// protocol acts on.
struct FrameMembership {
  Membership message;
  IpAddress source;       // the sender (querier election, host tracking)
  IpAddress destination;
  size_t vlan_count = 0;
};

/// Finds and decodes the IGMP or MLD message in `frame` (up to two VLAN tags;
/// IPv6 behind a hop-by-hop header). Checks what a router must of the IP
/// header (RFC 3376 §4, RFC 3810 §5, §7.4): TTL / hop limit 1, an unfragmented
/// IPv4 packet with a good header checksum; for MLD a link-local source (a
/// report from ::, sent before the host has one, is refused too) and the
/// Router Alert option.
DecodeStatus decode_frame(std::span<const uint8_t> frame, FrameMembership& out, const DecodeLimits& limits = {});

// --- floating-point time codes ------------------------------------------------

/// IGMPv3 Max Resp Code / QQIC and MLDv2 QQIC (8 bits): values below 128
/// are literal; above, 1eeemmmm = (mant | 0x10) << (exp + 3). Encoding takes
/// the exact value when it can, else the next lower representable one
/// (RFC 9776 §8.8). The unit is the caller's (tenths of a second, seconds).
uint8_t encode_code8(uint32_t value);
uint32_t decode_code8(uint8_t code);
/// MLDv2 Maximum Response Code (16 bits, milliseconds): literal below 32768;
/// above, 1eeemmmmmmmmmmmm = (mant | 0x1000) << (exp + 3).
uint16_t encode_code16(uint32_t value);
uint32_t decode_code16(uint16_t code);

// --- encoding -----------------------------------------------------------------

/// What an encoder needs beyond the message: our addresses on the link.
struct Sender {
  uint8_t mac[6] = {};
  IpAddress address;  // IGMP: our IPv4 address (0.0.0.0 allowed for a snooping querier); MLD: link-local
};

/// An IP multicast address's Ethernet address (01:00:5e + 23 bits, 33:33 + 32 bits).
void multicast_mac(const IpAddress& group, uint8_t mac[6]);

/// A query frame: Ethernet + IPv4 (TTL 1, TOS 0xc0, Router Alert) + IGMP,
/// or Ethernet + IPv6 (hop limit 1, hop-by-hop Router Alert) + MLD; to
/// 224.0.0.1 / ff02::1 for a general query, else to the group. `version`
/// picks the format: IGMP 1, 2 or 3, MLD 1 or 2 (older formats drop the
/// sources and flags).
std::vector<uint8_t> build_query_frame(const Sender& from, const Query& q, uint8_t version);

/// Report frames (IGMPv3 to 224.0.0.22, MLDv2 to ff02::16), as many as it
/// takes to keep each within `mtu` bytes of IP packet; a record too long for
/// one packet is split over several (RFC 3376 §4.2.16 rules: IS_EX/TO_EX keep
/// their first part only).
std::vector<std::vector<uint8_t>> build_report_frames(const Sender& from, uint8_t family,
                                                       std::span<const GroupRecord> records, size_t mtu = 1500);
/// An IGMPv1/v2 report or leave / MLDv1 report or done for one group.
std::vector<uint8_t> build_v1v2_frame(const Sender& from, const IpAddress& group, MessageKind kind, uint8_t version);

}  // namespace meridian::mcast
